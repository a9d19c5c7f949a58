//! PGD (no random start) parity with torchattacks on attack_case, with candle's
//! grouped convolution for the depthwise layers (see `parity.rs` for why). The
//! switch is process-wide, so this check has its own test binary.

mod common;

use common::attack_case::{check_attack, AttackCase};
use dfr_attacks::AttackKind;

#[test]
fn attack_case_parity_pgd() {
    let Some(dir) = common::fixtures() else {
        return;
    };
    let case = AttackCase::load(&dir);
    dfr_model::depthwise::force_reference_impl(true);
    let r = check_attack(&case, AttackKind::Pgd, "pgd_no_random_start");
    dfr_model::depthwise::force_reference_impl(false);
    assert!(r.passed, "PGD parity failed");
}
