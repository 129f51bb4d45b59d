# Writes test/fixtures/readers/: small files in the official formats written by the reference
# implementations (scipy.io.savemat, numpy.savez, PIL), and references.json with SHA-256 digests of
# Pillow's and torch's resizes of a fixed pattern. test/readers.test.ts reads them; run this again
# only to regenerate them (python3 with scipy and numpy for the files; /usr/bin/python3 with PIL
# 9.4 and torch 1.13 for the references: pass --references).
import hashlib, json, os, sys
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "readers")
os.makedirs(OUT, exist_ok=True)

def pattern(n, c, h, w, k0=0):
    """Planar uint8 [n, c, h, w]: (n*97 + ch*31 + r*7 + col*3 + k0) % 256 (the test computes the same)."""
    n_, ch, r, col = np.meshgrid(np.arange(n), np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((n_ * 97 + ch * 31 + r * 7 + col * 3 + k0) % 256).astype(np.uint8)

if "--references" not in sys.argv:
    import scipy.io
    x = pattern(2, 3, 32, 32)  # planar [n, ch, r, c]
    X = np.ascontiguousarray(x.transpose(2, 3, 1, 0))  # MATLAB's [r, c, ch, n]
    y = np.array([[10.0], [3.0]])
    scipy.io.savemat(os.path.join(OUT, "svhn-scipy.mat"), {"X": X, "y": y}, do_compression=False)
    scipy.io.savemat(os.path.join(OUT, "svhn-scipy-z.mat"), {"X": X, "y": y}, do_compression=True)
    data = x.reshape(2, 3072)
    labels = np.array([1, 1000], dtype=np.int64)
    np.savez(os.path.join(OUT, "imagenet32-numpy.npz"), data=data, labels=labels)
    np.savez_compressed(os.path.join(OUT, "imagenet32-numpy-z.npz"), data=data, labels=labels)
    print("wrote", sorted(os.listdir(OUT)))
else:
    import torch
    from PIL import Image
    refs = {}
    p = pattern(1, 3, 148, 148)[0]  # planar [3, 148, 148]
    out = np.asarray(Image.fromarray(p.transpose(1, 2, 0)).resize((32, 32), Image.BILINEAR)).transpose(2, 0, 1)
    refs["pillow_148_to_32"] = hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest()
    q = pattern(1, 3, 50, 45, 5)[0]
    t = torch.from_numpy(q.astype(np.float32) / 255)[None]
    r = torch.nn.functional.interpolate(t, size=(32, 32), mode="bilinear", align_corners=False)[0].numpy() * 255
    refs["torch_50x45_to_32"] = hashlib.sha256(np.floor(r + 0.5).astype(np.uint8).tobytes()).hexdigest()
    o = pattern(1, 1, 105, 105, 9)[0]
    t = torch.from_numpy(o.astype(np.float32) / 255)[None]
    r = torch.nn.functional.interpolate(t, size=(28, 28), mode="bilinear", align_corners=False)[0].numpy() * 255
    refs["torch_105_to_28"] = hashlib.sha256(np.floor(r + 0.5).astype(np.uint8).tobytes()).hexdigest()
    # A 1-bit grey PNG (Omniglot's kind): 6x3, ones where (r + col) % 3 == 0.
    im = Image.new("1", (6, 3))
    for r_ in range(3):
        for c_ in range(6):
            im.putpixel((c_, r_), int((r_ + c_) % 3 == 0))
    im.save(os.path.join(OUT, "bits1.png"))
    # A CelebA-shaped JPEG by PIL (178x218, quality 95, 4:2:0, as CelebA's files) of a smooth
    # synthetic picture (coloured blobs and fine noise), and PIL's 32x32 of the authors' transform
    # (crop (15, 40, 163, 188), Resize(32) bilinear), planar uint8 [3, 32, 32]: the CelebA reader
    # decodes with jpeg-js, and the test bounds its difference from PIL's result.
    import io
    g = np.random.default_rng(3)
    yy, xx = np.mgrid[0:218, 0:178].astype(np.float64)
    pic = np.zeros((218, 178, 3)) + 90
    for _ in range(12):
        cy, cx, r = g.uniform(0, 218), g.uniform(0, 178), g.uniform(15, 60)
        pic += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * g.uniform(-90, 120, 3)
    pic = np.clip(pic + g.normal(0, 3, pic.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pic).save(buf, "JPEG", quality=95, subsampling="4:2:0")
    open(os.path.join(OUT, "celeba-pil.jpg"), "wb").write(buf.getvalue())
    small = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").crop((15, 40, 178 - 15, 218 - 30)).resize((32, 32), Image.BILINEAR)
    np.save(os.path.join(OUT, "celeba-pil-32.npy"), np.asarray(small).transpose(2, 0, 1).copy())
    refs["pil_version"] = Image.__version__ if hasattr(Image, "__version__") else __import__("PIL").__version__
    refs["torch_version"] = torch.__version__
    json.dump(refs, open(os.path.join(OUT, "references.json"), "w"), indent=1)
    print(refs)
