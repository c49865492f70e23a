"""EfficientNet-Lite0 in numpy, straight from the PyTorch checkpoint, as a reference for tessera's
candle model (tests/http_classify.rs).

    python3 efficientnet_reference.py MODEL.pth PHOTO OUT.png

Cuts the centre 256 x 256 of PHOTO (no resampling, so tessera sees the same pixels: its resize of
a 256-pixel short side to 256 changes nothing), writes it to OUT.png, runs the network on its
centre 224 x 224 with (x - 127) / 128, and prints the 1000 softmax probabilities as JSON.
The checkpoint is read with Python's pickle restricted to what torch.save writes, without torch
and independently of tessera's converter.
"""
import collections
import json
import pickle
import struct
import sys

import numpy as np
from PIL import Image

STORAGE_TYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}


def load(path):
    """The state dict of a legacy (pre-1.6) torch.save file, as numpy arrays."""
    storages = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda storage, offset, size, stride, *rest: (storage, offset, size, stride)
            if module == "torch" and name in STORAGE_TYPES:
                return name
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            _, kind, key, _, count, _ = pid
            storages.setdefault(key, [STORAGE_TYPES[kind], count, None])
            return key

    with open(path, "rb") as f:
        for _ in range(3):  # magic number, version, system information
            pickle.load(f)
        state = Unpickler(f).load()
        for key in pickle.load(f):
            count = struct.unpack("<q", f.read(8))[0]
            dtype = storages[key][0]
            storages[key][2] = np.frombuffer(f.read(count * np.dtype(dtype).itemsize), dtype=dtype)
    weights = {}
    for name, (key, offset, size, stride) in state.items():
        data = storages[key][2]
        weights[name] = np.lib.stride_tricks.as_strided(
            data[offset:], shape=size, strides=[s * data.itemsize for s in stride]
        ).copy()
    return weights


def same_pad(x, kernel, stride):
    """TensorFlow's SAME padding: the odd pixel goes after."""
    size = x.shape[1]
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    before = total // 2
    return np.pad(x, ((0, 0), (before, total - before), (before, total - before)))


def conv(x, w, stride):
    k = w.shape[2]
    x = same_pad(x, k, stride)
    c, h, wd = x.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    cols = np.stack(
        [x[:, i : i + stride * oh : stride, j : j + stride * ow : stride] for i in range(k) for j in range(k)], 1
    )
    return np.einsum("oik,ikhw->ohw", w.reshape(w.shape[0], c, k * k), cols, optimize=True)


def depthwise(x, w, stride):
    k = w.shape[2]
    x = same_pad(x, k, stride)
    c, h, wd = x.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    out = np.zeros((c, oh, ow), np.float32)
    for i in range(k):
        for j in range(k):
            out += w[:, 0, i, j][:, None, None] * x[:, i : i + stride * oh : stride, j : j + stride * ow : stride]
    return out


def network(W):
    def bn(x, p):
        scale = W[p + ".weight"] / np.sqrt(W[p + ".running_var"] + 1e-3)
        return (x - W[p + ".running_mean"][:, None, None]) * scale[:, None, None] + W[p + ".bias"][:, None, None]

    relu6 = lambda x: np.clip(x, 0, 6)
    stages = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
              (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]

    def forward(x):
        x = relu6(bn(conv(x, W["_conv_stem.weight"], 2), "_bn0"))
        b = 0
        for repeats, k, s, e, cin, cout in stages:
            for r in range(repeats):
                stride, inp, p = (s if r == 0 else 1), (cin if r == 0 else cout), f"_blocks.{b}."
                y = x
                if e != 1:
                    y = relu6(bn(conv(y, W[p + "_expand_conv.weight"], 1), p + "_bn0"))
                y = relu6(bn(depthwise(y, W[p + "_depthwise_conv.weight"], stride), p + "_bn1"))
                y = bn(conv(y, W[p + "_project_conv.weight"], 1), p + "_bn2")
                x = y + x if stride == 1 and inp == cout else y
                b += 1
        x = relu6(bn(conv(x, W["_conv_head.weight"], 1), "_bn1")).mean((1, 2))
        return W["_fc.weight"] @ x + W["_fc.bias"]

    return forward


def main():
    pth, photo, out = sys.argv[1:4]
    image = Image.open(photo).convert("RGB")
    w, h = image.size
    left, top = (w - 256) // 2, (h - 256) // 2
    square = image.crop((left, top, left + 256, top + 256))
    square.save(out)
    pixels = np.asarray(square, np.float32)[16:240, 16:240]
    x = ((pixels - 127.0) / 128.0).transpose(2, 0, 1)
    logits = network(load(pth))(x)
    p = np.exp(logits - logits.max())
    print(json.dumps({"probs": (p / p.sum()).tolist()}))


main()
