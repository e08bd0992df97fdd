"""A small U-Net with two heads: class probabilities and follicle density.

Only operators tract runs are used: Conv, Relu, MaxPool, ConvTranspose, Concat, and the
softmax written out as ReduceMax, Sub, Exp, ReduceSum, Div (see `Exported`).
BatchNorm is trained and folded into the convolutions at export.
"""

import torch
from torch import nn

from .contract import CLASSES, DEFAULT_WIDTHS


def block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """`widths[:-1]` are the encoder levels (each halves the resolution after it), `widths[-1]`
    the bottleneck. The shipped (16, 32, 64, 96) sees a window of 85x85 px around each pixel (a
    third of the 256 px photo: not always eyes or ears next to a forehead); one more level
    sees 173x173 at little cost, since it runs at 1/16 of the resolution."""

    def __init__(self, widths=DEFAULT_WIDTHS):
        super().__init__()
        w = list(widths)
        self.enc = nn.ModuleList([block(cin, cout) for cin, cout in zip([3] + w[:-2], w[:-1])])
        self.mid = block(w[-2], w[-1])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in reversed(range(len(w) - 1))])
        self.dec = nn.ModuleList([block(2 * w[i], w[i]) for i in reversed(range(len(w) - 1))])
        self.cls = nn.Conv2d(w[0], len(CLASSES), 1)
        self.dens = nn.Conv2d(w[0], 1, 1)

    def features(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
            x = self.pool(x)
        x = self.mid(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return x

    def forward(self, x):
        """Training forward: class logits and density (hairs/cm² / DENSITY_UNIT)."""
        f = self.features(x)
        return self.cls(f), torch.relu(self.dens(f))


class Exported(nn.Module):
    """What goes into the ONNX file: softmax probabilities and density."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        logits, dens = self.net(x)
        # Softmax written out (ReduceMax, Sub, Exp, ReduceSum, Div): with tract's Softmax
        # operator over the channel axis of the 5x256x256 map this model took 259 ms per image
        # in scalpmap (tract 0.23.9, graph optimised), written out 137 ms; ONNX Runtime 42/39 ms.
        e = torch.exp(logits - logits.amax(dim=1, keepdim=True))
        return e / e.sum(dim=1, keepdim=True), dens


def fold_batchnorm(net):
    """Folds every Conv+BatchNorm pair (eval statistics) into one Conv, in place."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in net.modules():
        if isinstance(module, nn.Sequential):
            items = list(module)
            for i in range(len(items) - 1):
                if isinstance(items[i], nn.Conv2d) and isinstance(items[i + 1], nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(items[i], items[i + 1])
                    module[i + 1] = nn.Identity()
    return net


def param_count(net):
    return sum(p.numel() for p in net.parameters())
