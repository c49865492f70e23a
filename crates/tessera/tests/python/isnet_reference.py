"""IS-Net's mask of an image, by onnxruntime from Python with IMG.LY's reference pre- and
post-processing (resize bilinearly to the graph's square input, (value - 128) / 256 per channel,
the output scaled to 0-255 and resized back bilinearly). Writes the mask as an 8-bit PNG.

    python3 isnet_reference.py MODEL.onnx IMAGE.png MASK_OUT.png
"""
import sys

import numpy as np
import onnxruntime
from PIL import Image

model, image_path, out = sys.argv[1:4]
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
feed = session.get_inputs()[0]
size = feed.shape[2] if isinstance(feed.shape[2], int) else 1024
image = Image.open(image_path).convert("RGB")
resized = np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.float32)
tensor = ((resized - 128.0) / 256.0).transpose(2, 0, 1)[None]
mask = session.run(None, {feed.name: tensor})[0][0, 0]
mask = Image.fromarray((np.clip(mask, 0.0, 1.0) * 255.0).round().astype(np.uint8))
mask.resize(image.size, Image.BILINEAR).save(out)
