# PyTorch reference for `cargo xtask bench model --device cuda` (run both on the same GPU):
# timm efficientnet_b0 (2 classes), f32, the same batch/resolution configurations; train step
# (Adam, weighted CE), eval forward, PGD-10 with input gradients only. Mirrors
# ../shared/bench/pt_bench.py on a GPU. Usage: python pt_bench_gpu.py [RESxBATCH ...]
# (default 128x32 224x16 224x64).
import json, sys, time, torch, timm
torch.manual_seed(0)
dev = "cuda"
out = []
configs = [tuple(int(v) for v in a.split("x")) for a in sys.argv[1:]] or [(128, 32), (224, 16), (224, 64)]
for res, bs in configs:
    m = timm.create_model("efficientnet_b0", num_classes=2).to(dev)
    x = torch.rand(bs, 3, res, res, device=dev)
    y = (torch.arange(bs, device=dev) % 2)
    opt = torch.optim.Adam(m.parameters(), lr=3e-5)
    lossf = torch.nn.CrossEntropyLoss(weight=torch.tensor([5.6, 1.0], device=dev))
    def train_step():
        m.train(); opt.zero_grad(); l = lossf(m(x), y); l.backward(); opt.step()
    def fwd():
        m.eval()
        with torch.no_grad(): m(x)
    def pgd():
        m.eval()
        for p in m.parameters(): p.requires_grad_(False)
        eps, alpha = 0.001, 0.00025
        adv = x.clone()
        for _ in range(10):
            adv.requires_grad_(True)
            l = torch.nn.functional.cross_entropy(m(adv), y)
            g, = torch.autograd.grad(l, adv)
            adv = (adv.detach() + alpha * g.sign())
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
        for p in m.parameters(): p.requires_grad_(True)
    def bench(f, n):
        f(); torch.cuda.synchronize(); t = time.perf_counter()
        for _ in range(n): f()
        torch.cuda.synchronize()
        return bs * n / (time.perf_counter() - t)
    r = {"resolution": res, "batch": bs, "train_images_per_second": bench(train_step, 10),
         "eval_images_per_second": bench(fwd, 10), "pgd10_images_per_second": bench(pgd, 3)}
    print(json.dumps(r)); out.append(r)
print(json.dumps({"bench": "model", "pytorch": torch.__version__, "timm": timm.__version__,
                  "device": torch.cuda.get_device_name(), "results": out}))
