"""A small U-Net with two heads: class probabilities and follicle density.

Only operators tract runs are used: Conv, Relu, MaxPool, ConvTranspose, Concat, and the
softmax written out as ReduceMax, Sub, Exp, ReduceSum, Div.
BatchNorm is trained and folded into the convolutions at export.
"""

import torch
from torch import nn

from .contract import CLASSES


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
    """Five-level U-Net that works at half the input resolution.

    A stride-2 stem takes the 256x256 input to 128x128, four poolings reach 8x8 (a receptive
    field that spans a face or the whole head, which tells a forehead from a bald crown), and
    one 2x2 transposed convolution brings the features back to 256x256 for the heads. Compared
    with v0.1.0 (four levels at full resolution) it costs about a third of the multiply-adds.
    """

    def __init__(self, widths=(16, 32, 64, 96, 128), head=16):
        super().__init__()
        w = widths
        self.stem = nn.Sequential(
            nn.Conv2d(3, w[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w[0]),
            nn.ReLU(inplace=True),
            nn.Conv2d(w[0], w[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(w[0]),
            nn.ReLU(inplace=True),
        )
        self.enc = nn.ModuleList([block(w[i], w[i + 1]) for i in range(len(w) - 2)])
        self.mid = block(w[-2], w[-1])
        self.pool = nn.MaxPool2d(2)
        levels = list(reversed(range(len(w) - 1)))
        self.up = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in levels])
        self.dec = nn.ModuleList([block(2 * w[i], w[i]) for i in levels])
        self.final = nn.Sequential(nn.ConvTranspose2d(w[0], head, 2, stride=2), nn.ReLU(inplace=True))
        self.cls = nn.Conv2d(head, len(CLASSES), 1)
        self.dens = nn.Conv2d(head, 1, 1)

    def features(self, x):
        x = self.stem(x)
        skips = [x]
        for e in self.enc:
            x = e(self.pool(x))
            skips.append(x)
        x = self.mid(self.pool(x))
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.final(x)

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
        # Softmax written out (ReduceMax, Sub, Exp, ReduceSum, Div): tract's Softmax operator
        # over the channel axis took 130 of 180 ms per image here; these five take about 10.
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
