# Peak resident memory of PyTorch's CPU train step, for `cargo xtask bench model --pytorch`:
# timm efficientnet_b0 (2 classes), f32, 2 threads, Adam and class-weighted CE as
# ../shared/bench/pt_bench.py. One warm-up step, then the kernel's peak-RSS mark is reset
# (Linux: /proc/self/clear_refs) and VmHWM is read after two more steps.
# Usage: python pt_train_memory.py RES BATCH   → one JSON line.
import json, sys, torch, timm
res, bs = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(2)
torch.manual_seed(0)
m = timm.create_model("efficientnet_b0", num_classes=2)
x = torch.rand(bs, 3, res, res)
y = torch.arange(bs) % 2
opt = torch.optim.Adam(m.parameters(), lr=3e-5)
lossf = torch.nn.CrossEntropyLoss(weight=torch.tensor([5.6, 1.0]))
def step():
    m.train(); opt.zero_grad(); l = lossf(m(x), y); l.backward(); opt.step()
def hwm_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
step()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
step(); step()
print(json.dumps({"resolution": res, "batch": bs, "train_peak_rss_mib": hwm_mib(),
                  "pytorch": torch.__version__}))
