# The PyTorch peer of bench/torch.ts (bench only: never imported by the product, CI or npm test).
# The shipped VAE, Glow (pixel and logit variants) and diffusion U-Net re-implemented in PyTorch
# from src/models/{vae,glow,glow_layers,unet,diffusion}.ts, reading the parameter files that
# bench/torch.ts writes (every parameter under its fimscope name, the Glow's fixed permutations
# and signs, the inputs and the noise: the same numbers on both sides). It answers one JSON
# request per stdin line with one JSON line on stdout:
#   {"cmd": "load", "id", "file", "meta"}   build the model from a file (meta: kind, config, constants)
#   {"cmd": "check", "id", "work"}          features (loop, vmap, and the loop in float64 as the reference) or the
#                                           first step's loss, for the parity check
#   {"cmd": "run", "id", "work": "features" | "step", "engine": "loop" | "vmap"}
#                                           one timed run: {"wall": ms, "cpu": ms} (process CPU time, all threads)
#   {"cmd": "products", "list": [{"op", "p" | "s"}], "runs"}
#                                           each product alone (bench/products.ts's kinds and shapes: a
#                                           convolution, its input or weight gradient, a matrix product),
#                                           on the same operands every run: {"ms": [best of runs, wall ms]}
#   {"cmd": "quit"}
# float32, torch.set_num_threads(threads) (default 2); per-example gradients by a loop of
# autograd.grad calls ("loop") or functorch's vmap(grad) ("vmap").
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F
from functorch import grad as ft_grad, vmap

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
LOG2PI = math.log(2 * math.pi)


def read_safetensors(path):
    """{name: float32 tensor} from a safetensors file (F32 only, as bench/torch.ts writes)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        if h["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {h['dtype']}, expected F32")
        a, b = h["data_offsets"]
        t = torch.frombuffer(bytearray(raw[base + a:base + b]), dtype=torch.float32)
        out[name] = t.reshape(h["shape"]) if h["shape"] else t.reshape(())
    return out


def conv(p, name, x, stride=1, padding=None):
    w = p[name + ".weight"]
    pad = w.shape[-1] // 2 if padding is None else padding
    return F.conv2d(x, w, p.get(name + ".bias"), stride=stride, padding=pad)


def linear(p, name, x):
    return x @ p[name + ".weight"] + p[name + ".bias"]


def upsample(x):
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


# ---- VAE (src/models/vae.ts) ----
def discretized_logistic_log_prob(x, mu, log_s):
    hb = 1 / 255
    c = x - mu
    inv_s = torch.exp(-log_s)
    plus_in = inv_s * (c + hb)
    min_in = inv_s * (c - hb)
    log_cdf_plus = plus_in - F.softplus(plus_in)
    log_one_minus_cdf_min = -F.softplus(min_in)
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_s * c
    log_pdf_mid = mid_in - log_s - 2 * F.softplus(mid_in)
    log_mid = torch.where(cdf_delta > 1e-5, torch.log(torch.clamp(cdf_delta, min=1e-12)), log_pdf_mid - math.log(127.5))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_mid))


def vae_nll(p, cfg, x, eps):
    B = x.shape[0]
    C, H, W = cfg["image"]
    L = cfg["latent"]
    c2 = cfg["channels"][1]
    h = F.silu(conv(p, "encoder.conv1", x, stride=2))
    h = F.silu(conv(p, "encoder.conv2", h, stride=2))
    o = linear(p, "encoder.out", h.reshape(B, -1))
    mu, logvar = o[:, :L], o[:, L:]
    z = mu + torch.exp(logvar * 0.5) * eps
    h = F.silu(linear(p, "decoder.in", z)).reshape(B, c2, H // 4, W // 4)
    h = F.silu(conv(p, "decoder.conv1", h))
    h = F.silu(conv(p, "decoder.conv2", upsample(h)))
    h = F.silu(conv(p, "decoder.conv3", upsample(h)))
    o = conv(p, "decoder.out", h)
    mean, log_s = o[:, :C], torch.clamp(o[:, C:2 * C], min=-7)
    rec = discretized_logistic_log_prob(x, mean, log_s).reshape(B, -1).sum(1)
    kl = ((mu * mu + torch.exp(logvar)) - (logvar + 1)).sum(1) * 0.5
    return -(rec - kl)


# ---- Glow (src/models/glow.ts, glow_layers.ts) ----
def squeeze2(x):
    B, C, H, W = x.shape
    return x.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(B, 4 * C, H // 2, W // 2)


def gaussian_log_prob(z, mean=None, logs=None):
    d = z - mean if mean is not None else z
    e = (d * torch.exp(-logs) if logs is not None else d) ** 2 + LOG2PI
    if logs is not None:
        e = e + 2 * logs
    return e.reshape(z.shape[0], -1).sum(1) * -0.5


def glow_nll(p, cfg, x, _noise=None):
    B = x.shape[0]
    C, H, W = cfg["image"]
    h = x
    logdet = torch.zeros(B)
    logpz = torch.zeros(B)
    a = cfg.get("logit") or 0
    if a:
        q = (h + 0.5) * (1 - 2 * a) + a
        lp, l1p = torch.log(q), torch.log(1 - q)
        logdet = (h[0].numel() * math.log(1 - 2 * a)) - (lp + l1p).reshape(B, -1).sum(1)
        h = lp - l1p
    c = C
    for lv in range(cfg["levels"]):
        c *= 4
        h = squeeze2(h)
        hw = h.shape[2] * h.shape[3]
        for k in range(cfg["steps"]):
            s = f"levels.{lv}.steps.{k}"
            # ActNorm
            h = (h + p[s + ".actnorm.bias"].reshape(1, -1, 1, 1)) * torch.exp(p[s + ".actnorm.logs"].reshape(1, -1, 1, 1))
            ld = p[s + ".actnorm.logs"].sum() * hw
            # invertible 1x1: W = P L U, P and the signs fixed
            n = c
            eye = torch.eye(n)
            lower = p[s + ".invconv.lower"] * torch.tril(torch.ones(n, n), -1) + eye
            upper = p[s + ".invconv.upper"] * torch.triu(torch.ones(n, n), 1) + torch.diag(p[s + ".invconv.sign"] * torch.exp(p[s + ".invconv.logs"]))
            wmat = (p[s + ".invconv.perm"] @ lower) @ upper
            h = F.conv2d(h, wmat.reshape(n, n, 1, 1))
            ld = ld + p[s + ".invconv.logs"].sum() * hw
            # affine coupling
            half = n // 2
            xa, xb = h[:, :half], h[:, half:]
            t = F.relu(conv(p, s + ".coupling.conv1", xa))
            t = F.relu(conv(p, s + ".coupling.conv2", t))
            o = conv(p, s + ".coupling.conv3", t)
            shift, raw = o[:, :half], o[:, half:] + 2
            yb = (xb + shift) * torch.sigmoid(raw)
            h = torch.cat([xa, yb], 1)
            logdet = logdet + (ld + F.logsigmoid(raw).sum((1, 2, 3)))
        if lv < cfg["levels"] - 1:
            half = h.shape[1] // 2
            z1, z2 = h[:, :half], h[:, half:]
            o = conv(p, f"levels.{lv}.prior.conv", z1)
            logpz = logpz + gaussian_log_prob(z2, o[:, :half], o[:, half:])
            h = z1
            c //= 2
    logpz = logpz + gaussian_log_prob(h)
    return -(logpz + logdet) + C * H * W * math.log(256)


# ---- the diffusion model's U-Net (src/models/unet.ts) and its eps-loss (diffusion_process.ts) ----
def resblock(p, name, x, temb, groups):
    cout = p[name + ".conv1.weight"].shape[0]
    h = conv(p, name + ".conv1", F.silu(F.group_norm(x, groups, p[name + ".norm1.weight"], p[name + ".norm1.bias"], 1e-5)))
    h = h + linear(p, name + ".time", F.silu(temb)).reshape(x.shape[0], cout, 1, 1)
    h = conv(p, name + ".conv2", F.silu(F.group_norm(h, groups, p[name + ".norm2.weight"], p[name + ".norm2.bias"], 1e-5)))
    return h + (conv(p, name + ".shortcut", x) if name + ".shortcut.weight" in p else x)


def attention(p, name, x, groups):
    B, C, H, W = x.shape
    N = H * W
    qkv = conv(p, name + ".qkv", F.group_norm(x, groups, p[name + ".norm.weight"], p[name + ".norm.bias"], 1e-5)).reshape(B, 3 * C, N)
    q, k, v = qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:]
    attn = torch.softmax((q.transpose(1, 2) @ k) * (1 / math.sqrt(C)), -1)
    h = (v @ attn.transpose(1, 2)).reshape(B, C, H, W)
    return x + conv(p, name + ".out", h)


def unet(p, cfg, x, temb_in):
    g = cfg["groups"]
    L = len(cfg["dimMults"])
    R = cfg["resBlocks"]
    temb = linear(p, "unet.time.out", F.silu(linear(p, "unet.time.in", temb_in)))
    h = conv(p, "unet.in", x)
    skips = []
    for lv in range(L):
        for r in range(R):
            h = resblock(p, f"unet.down.{lv}.{r}", h, temb, g)
            skips.append(h)
        if lv < L - 1:
            h = conv(p, f"unet.down.{lv}.downsample", h, stride=2, padding=1)
    h = resblock(p, "unet.mid.block1", h, temb, g)
    h = attention(p, "unet.mid.attn", h, g)
    h = resblock(p, "unet.mid.block2", h, temb, g)
    for lv in range(L - 1, -1, -1):
        for r in range(R):
            h = resblock(p, f"unet.up.{lv}.{r}", torch.cat([h, skips.pop()], 1), temb, g)
        if lv > 0:
            h = conv(p, f"unet.up.{lv}.upsample", upsample(h))
    return conv(p, "unet.out.conv", F.silu(F.group_norm(h, g, p["unet.out.norm.weight"], p["unet.out.norm.bias"], 1e-5)))


def eps_loss(p, cfg, x, noise, temb, ca, cb, kind):
    """Per image: mean over pixels of |eps_hat - eps| (l1) or its square, at x_t = ca x + cb eps."""
    B = x.shape[0]
    xt = x * ca.reshape(B, 1, 1, 1) + noise * cb.reshape(B, 1, 1, 1)
    e = unet(p, cfg, xt, temb) - noise
    per = e.abs() if kind == "l1" else e * e
    return per.reshape(B, -1).sum(1) / per[0].numel()


class Peer:
    """One model: its parameters twice (the feature pass's, and the training step's with Adam), inputs, noise."""

    def __init__(self, meta, tensors):
        self.meta = meta
        self.kind = meta["kind"]
        self.cfg = meta["config"]
        self.names = meta["names"]
        fixed = {k: v for k, v in tensors.items() if not k.startswith("data.") and k not in self.names}
        self.p = {n: tensors[n].clone() for n in self.names}
        self.p.update(fixed)
        self.sp = {n: tensors[n].clone().requires_grad_(True) for n in self.names}
        self.sp.update(fixed)
        d = {k[5:]: v for k, v in tensors.items() if k.startswith("data.")}
        self.d = d
        self.opt = torch.optim.Adam([self.sp[n] for n in self.names], lr=meta.get("lr", 1e-4))

    def loss(self, p, x, *extra):
        """The NLL (features) of a batch, [B]."""
        if self.kind == "vae":
            return vae_nll(p, self.cfg, x, extra[0])
        if self.kind == "glow":
            return glow_nll(p, self.cfg, x)
        temb, ca, cb = extra[1:]
        return eps_loss(p, self.cfg, x, extra[0], temb, ca, cb, self.meta["featureLoss"])

    def feature_args(self):
        """Per-example tensors of the feature pass (x and its noise etc.), each [n, ...]."""
        d = self.d
        if self.kind == "vae":
            return [d["x"], d["noise"]]
        if self.kind == "glow":
            return [d["x"]]
        return [d["x"], d["noise"], d["temb"], d["ca"], d["cb"]]

    def features_loop(self):
        args = self.feature_args()
        n = args[0].shape[0]
        params = [self.p[k] for k in self.names]
        for t in params:
            t.requires_grad_(True)
        nll = torch.empty(n)
        sq = torch.empty(n, len(params))
        for i in range(n):
            loss = self.loss(self.p, *[a[i:i + 1] for a in args]).sum()
            gs = torch.autograd.grad(loss, params)
            nll[i] = loss.detach()
            sq[i] = torch.stack([(g * g).sum() for g in gs])
        for t in params:
            t.requires_grad_(False)
        return nll, sq

    def features_vmap(self):
        args = self.feature_args()
        names = self.names
        fixed = {k: v for k, v in self.p.items() if k not in names}

        def f(ps, *ex):
            p = dict(fixed)
            p.update(ps)
            loss = self.loss(p, *[a.unsqueeze(0) for a in ex]).sum()
            return loss, loss

        ps = {k: self.p[k] for k in names}
        gs, nll = vmap(ft_grad(f, has_aux=True), in_dims=(None,) + (0,) * len(args))(ps, *args)
        sq = torch.stack([(gs[k] * gs[k]).reshape(gs[k].shape[0], -1).sum(1) for k in names], 1)
        return nll, sq

    def step_loss(self):
        """The trainer's objective on the fixed step batch: bits/dim of the NLL (VAE, Glow) or the mean eps-loss (diffusion)."""
        d = self.d
        if self.kind == "vae":
            l = vae_nll(self.sp, self.cfg, d["step_x"], d["step_noise"])
        elif self.kind == "glow":
            l = glow_nll(self.sp, self.cfg, d["step_x"])
        else:
            return eps_loss(self.sp, self.cfg, d["step_x"], d["step_noise"], d["step_temb"], d["step_ca"], d["step_cb"], self.meta["trainLoss"]).mean()
        return l.mean() / (self.meta["dims"] * math.log(2))

    def step(self):
        """One training step as bench/train_step.ts: loss, backward, clipping to norm 100, Adam; returns the loss."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.step_loss()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([self.sp[n] for n in self.names], 100.0)
        self.opt.step()
        return loss.item()


def product_fn(q):
    """A function running one product alone (bench/products.ts's Product), on operands made once."""
    if q["op"] == "matmul":
        s = q["s"]
        # A is [batchA][M][K] (stored [K][M] when transA), B [batchB][K][N] ([N][K] when transB)
        a = torch.rand(s["batchA"], *((s["K"], s["M"]) if s["transA"] else (s["M"], s["K"])))
        b = torch.rand(s["batchB"], *((s["N"], s["K"]) if s["transB"] else (s["K"], s["N"])))
        a = a.transpose(1, 2) if s["transA"] else a
        b = b.transpose(1, 2) if s["transB"] else b
        # a shared operand as a matrix, as the models pass it (torch folds a batch into one product only then)
        if s["batchB"] == 1:
            b = b[0]
        if s["batchA"] == 1 and s["batchB"] == 1:
            a = a[0]
        return lambda: torch.matmul(a, b)
    p = q["p"]
    x = torch.rand(p["N"], p["Cin"], p["H"], p["W"])
    w = torch.rand(p["Cout"], p["Cin"] // p["groups"], p["KH"], p["KW"])
    gy = torch.rand(p["N"], p["Cout"], p["OH"], p["OW"])
    st, pad, g = [p["stride"]] * 2, [p["pad"]] * 2, p["groups"]
    if q["op"] == "conv2d":
        return lambda: F.conv2d(x, w, None, stride=st, padding=pad, groups=g)
    # the gradients as autograd computes them in a step: aten's convolution backward, one output asked for
    mask = [True, False, False] if q["op"] == "conv2dInputGrad" else [False, True, False]
    return lambda: torch.ops.aten.convolution_backward(gy, x, w, None, st, pad, [1, 1], False, [0, 0], g, mask)


def product_ms(q, runs):
    """Best of `runs` wall-clock ms of one product alone, after one untimed run."""
    f = product_fn(q)
    best = math.inf
    with torch.no_grad():
        for r in range(runs + 1):
            t0 = time.perf_counter()
            f()
            if r:
                best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def main():
    peers, refs = {}, {}
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req["cmd"]
        try:
            if cmd == "quit":
                break
            if cmd == "hello":
                res = {"torch": torch.__version__, "threads": torch.get_num_threads(), "capability": torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else ""}
            elif cmd == "load":
                tensors = read_safetensors(req["file"])
                peers[req["id"]] = Peer(req["meta"], tensors)
                refs[req["id"]] = (req["meta"], tensors)
                res = {"ok": True}
            elif cmd == "check":
                pr = peers[req["id"]]
                res = {}
                if "features" in req["work"]:
                    nl, sl = pr.features_loop()
                    nv, sv = pr.features_vmap()
                    res.update({"nllLoop": nl.tolist(), "sqLoop": sl.flatten().tolist(), "nllVmap": nv.tolist(), "sqVmap": sv.flatten().tolist()})
                    # the float64 reference: the same loop with every tensor in double precision
                    meta, tensors = refs[req["id"]]
                    torch.set_default_dtype(torch.float64)
                    try:
                        nr, sr = Peer(meta, {k: v.double() for k, v in tensors.items()}).features_loop()
                    finally:
                        torch.set_default_dtype(torch.float32)
                    res.update({"nllRef": nr.tolist(), "sqRef": sr.flatten().tolist()})
                if "step" in req["work"]:
                    with torch.no_grad():
                        res["stepLoss"] = pr.step_loss().item()
            elif cmd == "run":
                pr = peers[req["id"]]
                fn = pr.step if req["work"] == "step" else pr.features_loop if req["engine"] == "loop" else pr.features_vmap
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                res = {"wall": (time.perf_counter() - t0) * 1000, "cpu": (time.process_time() - c0) * 1000}
            elif cmd == "products":
                res = {"ms": [product_ms(q, req["runs"]) for q in req["list"]]}
            else:
                raise ValueError(f"unknown command {cmd}")
        except Exception as e:  # reported to the driver, which stops with the message
            res = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(res) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
