//! What the trainer records in a model checkpoint: the experiment configuration that
//! produced it, in the checkpoint's free-form `config` metadata
//! ([`dfr_model::checkpoint`]). Written and read only here, so the two cannot drift.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ExperimentConfig;
use crate::error::{Result, TrainError};

/// The `config` metadata of a checkpoint written by [`crate::train`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedCheckpoint {
    /// The configuration of the training run.
    pub experiment: ExperimentConfig,
}

impl TrainedCheckpoint {
    /// The metadata string stored with a checkpoint of a run of `experiment`.
    pub fn metadata(experiment: &ExperimentConfig) -> Result<String> {
        serde_json::to_string(&serde_json::json!({ "experiment": experiment }))
            .map_err(|e| TrainError::config("experiment", format!("cannot serialise as JSON: {e}")))
    }

    /// The experiment configuration stored in the checkpoint at `path`: `Ok(None)` for a
    /// checkpoint not written by the trainer (no `experiment` key), an error when the
    /// file is not a checkpoint or its configuration does not parse.
    pub fn read(path: &Path) -> Result<Option<ExperimentConfig>> {
        let meta = dfr_model::checkpoint::read_checkpoint_meta(path)?;
        let bad = |message: String| TrainError::ConfigFile {
            path: PathBuf::from(path),
            message,
        };
        let value: serde_json::Value = serde_json::from_str(&meta.config)
            .map_err(|e| bad(format!("checkpoint `config` metadata is not JSON: {e}")))?;
        if value.get("experiment").is_none() {
            return Ok(None);
        }
        let t: TrainedCheckpoint = serde_json::from_value(value)
            .map_err(|e| bad(format!("checkpoint experiment configuration: {e}")))?;
        Ok(Some(t.experiment))
    }
}
