# The authors' CelebA transform done by PIL itself, for comparing our reader (jpeg-js decode,
# resize.ts) with it: writes DIR/img_align_celeba/*.jpg (178x218 crops of photos, JPEG quality Q,
# 4:2:0 chroma as CelebA's files), DIR/list_eval_partition.txt (all partition 2), and PIL's results:
# DIR/pil_full.npy (decoded, [N,218,178,3]) and DIR/pil_32.npy (crop (15,40,163,188), Resize(32)
# bilinear: [N,3,32,32]). Then: deno run -A scripts/data/check_celeba.ts DIR
#
#   /usr/bin/python3 scripts/data/pil_reference.py DIR [N=200] [Q=95] PHOTO...
import os, sys
import numpy as np
from PIL import Image

out, n, q = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
photos = [Image.open(p).convert("RGB") for p in sys.argv[4:]]
rng = np.random.default_rng(0)
os.makedirs(f"{out}/img_align_celeba", exist_ok=True)
full, small, names = [], [], []
for i in range(n):
    src = photos[i % len(photos)]
    s = rng.uniform(0.3, 1.0)  # a random window of the photo, scaled to 178x218
    w, h = int(src.width * s * 0.8), int(src.height * s)
    x, y = rng.integers(0, src.width - w + 1), rng.integers(0, src.height - h + 1)
    im = src.crop((x, y, x + w, y + h)).resize((178, 218), Image.LANCZOS)
    name = f"{i + 1:06d}.jpg"
    im.save(f"{out}/img_align_celeba/{name}", quality=q, subsampling="4:2:0")
    pic = Image.open(f"{out}/img_align_celeba/{name}").convert("RGB")  # as the authors' LMDBDataset
    full.append(np.asarray(pic))
    small.append(np.asarray(pic.crop((15, 40, 178 - 15, 218 - 30)).resize((32, 32), Image.BILINEAR)).transpose(2, 0, 1))
    names.append(name)
open(f"{out}/list_eval_partition.txt", "w").write("".join(f"{m} 2\n" for m in names))
np.save(f"{out}/pil_full.npy", np.stack(full))
np.save(f"{out}/pil_32.npy", np.ascontiguousarray(np.stack(small)))
print(f"wrote {n} JPEGs (quality {q}) and PIL's results to {out}")
