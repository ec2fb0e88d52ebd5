#!/usr/bin/python3
"""Writes tests/fixtures/models/: tiny torchvision classifiers as ONNX, with PyTorch's logits.

Each model is a real torchvision class (or built from torchvision's own blocks) with tiny widths,
so the exported graph has the op patterns of the full-size network at a few KB. For NAME:
  NAME.onnx         torch.onnx.export, opset 17, input "input" [N,3,H,W], output "logits" [N,C],
                    batch axis dynamic
  NAME.input.npy    float32 [2,3,H,W], C order
  NAME.logits.npy   float32 [2,C]: PyTorch's output for that input (eval mode, computed in float64)
  manifest.tsv      one line per model (read by the C test)

Weights are random but typical (see make_typical): trained nets never have identity BatchNorms, zero
biases or zero heads, and a fixture with those would hide bugs in exactly those paths.

Needs torch 1.13, torchvision 0.14, onnx 1.12, numpy (the /usr/bin/python3 of the dev machine).
Run: /usr/bin/python3 tests/gen/make_model_fixtures.py [--only NAME,NAME] [--out DIR]
bench/torchvision_parity.py imports make_typical, export_onnx and float64_reference from here.
"""
import argparse
import functools
import importlib
import math
import os
import sys
import warnings
import zlib

import numpy as np
import torch
import torch.nn as nn

warnings.filterwarnings("ignore")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "models")


# ---------------------------------------------------------------------------------------------
# Random but typical weights
# ---------------------------------------------------------------------------------------------

def seed_for(name):
    """A seed that depends only on the model's name, so models do not change when others are added."""
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def _fan_in(weight):
    return weight.shape[1] * int(np.prod(weight.shape[2:])) if weight.dim() > 1 else weight.shape[0]


@torch.no_grad()
def make_typical(model, calibration_input):
    """Re-initialises model in place so that no parameter is trivially 0 or 1, then puts it in eval mode.

    - Conv/Linear weights keep torchvision's init unless it is all zero (ViT head and the like), then
      PyTorch's default init; every Conv/Linear bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    - BatchNorm/LayerNorm/GroupNorm: gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1).
    - BatchNorm running stats: measured on calibration_input, each layer on what it receives in eval
      mode (so activations stay in a sane range even in 150-layer nets), then perturbed:
      var *= U(0.5, 1.5), mean += N(0, 0.1) * std. Folding a BatchNorm wrongly always shows.
    - ConvNeXt layer_scale ~ U(0.1, 1); class tokens ~ N(0, 0.2); relative position bias tables
      ~ N(0, 0.5) (their 0.02 init makes a wrong index nearly invisible).
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            if module.weight.abs().max() == 0:
                module.reset_parameters()
            if module.bias is not None:
                bound = 1.0 / math.sqrt(_fan_in(module.weight))
                module.bias.uniform_(-bound, bound)
        elif isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
            if getattr(module, "weight", None) is not None:
                module.weight.uniform_(0.5, 1.5)
            if getattr(module, "bias", None) is not None:
                module.bias.normal_(0.0, 0.1)
    for name, param in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "layer_scale":
            param.uniform_(0.1, 1.0)
        elif leaf == "class_token":
            param.normal_(0.0, 0.2)
        elif leaf == "relative_position_bias_table":
            param.normal_(0.0, 0.5)

    # Statistics are set layer by layer in one eval-mode pass: a pre-hook measures what each BatchNorm
    # really receives (upstream BatchNorms already final), so the perturbations do not compound with
    # depth. Setting them all from one train-mode pass instead makes EfficientNet/RegNet-Y logits
    # reach 1e8, where even ONNX Runtime and PyTorch disagree.
    model.eval()

    def calibrate(bn, inputs):
        x = inputs[0]
        dims = [0] + list(range(2, x.dim()))
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
        bn.running_var.copy_(var * torch.empty_like(var).uniform_(0.5, 1.5))
        bn.running_mean.copy_(mean + torch.randn_like(mean) * 0.1 * var.sqrt())
        handles.pop(id(bn)).remove()  # calibrate once, from the first call

    handles = {}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            handles[id(module)] = module.register_forward_pre_hook(calibrate)
    if handles:
        model(calibration_input)
    if handles:
        raise RuntimeError("%d BatchNorm layers were not reached by the calibration pass" % len(handles))
    model.eval()
    return model


def _zero_symbolic(g, self):
    return g.op("ConstantOfShape", g.op("Shape", self), value_t=torch.tensor([0.0]))


_exporter_patched = False


def patch_exporter():
    """Adds the one symbolic torch 1.13's exporter lacks for torchvision 0.14 classifiers.

    Swin V2's attention zeroes the K third of its qkv bias at run time (Tensor.zero_), and torch 1.13
    has no ONNX symbolic for aten::zero. The bias is a parameter, so constant folding removes the op
    again; the exported graph is what a newer exporter writes.
    """
    global _exporter_patched
    if not _exporter_patched:
        torch.onnx.register_custom_op_symbolic("aten::zero", _zero_symbolic, 17)
        _exporter_patched = True


def export_onnx(model, example, path):
    """Exports model with opset 17, input 'input', output 'logits', dynamic batch axis."""
    patch_exporter()
    torch.onnx.export(
        model,
        example,
        path,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=True,
    )


def compact_names(path):
    """Renames nodes and intermediate values to short names ("Conv_12", "t34"); weights keep theirs.

    torch writes names like "/features/features.1/features.1.0/attn/Constant_34_output_0", which are
    more than half of a tiny model's file. Graph inputs, outputs and initializers are unchanged.
    """
    import onnx

    model = onnx.load(path)
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {t.name for t in graph.initializer}
    renamed = {}
    for index, node in enumerate(graph.node):
        for attribute in node.attribute:
            if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise RuntimeError("%s: subgraphs are not handled by compact_names" % path)
        node.name = "%s_%d" % (node.op_type, index)
        for i, name in enumerate(node.output):
            if name and name not in keep:
                renamed[name] = "t%d" % len(renamed)
                node.output[i] = renamed[name]
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    del graph.value_info[:]  # shapes of intermediates: optional, and the runtime must infer them anyway
    onnx.checker.check_model(model)
    onnx.save(model, path)


# ---------------------------------------------------------------------------------------------
# Tiny models. Each builder returns (model, (C, H, W)); widths are cut, op patterns are kept.
# ---------------------------------------------------------------------------------------------

def _resnet(block, widths, layers, groups=1, width_per_group=64):
    """torchvision ResNet with its stem/stages rebuilt by its own _make_layer at small widths."""
    from torchvision.models import resnet

    model = resnet.ResNet(block, [1, 1, 1, 1], num_classes=10, groups=groups, width_per_group=width_per_group)
    model.inplanes = widths[0]
    model.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(widths[0])
    model.layer1 = model._make_layer(block, widths[0], layers[0])
    model.layer2 = model._make_layer(block, widths[1], layers[1], stride=2)
    model.layer3 = model._make_layer(block, widths[2], layers[2], stride=2)
    model.layer4 = model._make_layer(block, widths[3], layers[3], stride=2)
    model.fc = nn.Linear(widths[3] * block.expansion, 10)
    return model


def build_resnet_basic():
    from torchvision.models.resnet import BasicBlock

    return _resnet(BasicBlock, [8, 8, 12, 12], [2, 1, 1, 1]), (3, 24, 24)


def build_resnext_bottleneck():
    # Bottleneck with groups=2 (ResNeXt-style grouped 3x3), 2 blocks in stage 1 so both the
    # projection and the identity shortcut appear.
    from torchvision.models.resnet import Bottleneck

    return _resnet(Bottleneck, [4, 4, 8, 8], [2, 1, 1, 1], groups=2, width_per_group=64), (3, 24, 24)


def build_mobilenet_v2():
    from torchvision.models import mobilenetv2
    from torchvision.ops.misc import Conv2dNormActivation

    # t, c, n, s as in torchvision, fewer and narrower stages
    setting = [[1, 8, 1, 1], [6, 8, 2, 2], [4, 16, 1, 2]]
    model = mobilenetv2.MobileNetV2(num_classes=10, inverted_residual_setting=setting)
    # the real net widens to 1280 here; 64 keeps the same Conv-BN-ReLU6 shape at a fraction of the size
    model.features[-1] = Conv2dNormActivation(16, 32, kernel_size=1, activation_layer=nn.ReLU6)
    model.classifier[1] = nn.Linear(32, 10)
    model.last_channel = 32
    return model, (3, 24, 24)


def build_mobilenet_v3_small():
    from functools import partial

    from torchvision.models import mobilenetv3

    cfg = partial(mobilenetv3.InvertedResidualConfig, width_mult=1.0)
    setting = [
        cfg(16, 3, 16, 8, True, "RE", 2, 1),
        cfg(8, 3, 24, 8, False, "RE", 2, 1),
        cfg(8, 5, 32, 16, True, "HS", 2, 1),
        cfg(16, 5, 32, 16, True, "HS", 1, 1),
    ]
    return mobilenetv3.MobileNetV3(setting, last_channel=32, num_classes=10), (3, 24, 24)


def build_mobilenet_v3_large_dilated():
    # the "large" pattern: ReLU stages, SE on 5x5, hardswish later, and a dilated last stage
    # (what torchvision builds for segmentation backbones with dilated=True)
    from functools import partial

    from torchvision.models import mobilenetv3

    cfg = partial(mobilenetv3.InvertedResidualConfig, width_mult=0.5)
    setting = [
        cfg(16, 3, 16, 16, False, "RE", 1, 1),
        cfg(16, 3, 32, 16, False, "RE", 2, 1),
        cfg(16, 5, 48, 16, True, "RE", 2, 1),
        cfg(16, 3, 48, 24, True, "HS", 1, 1),
        cfg(24, 5, 48, 24, True, "HS", 1, 2),
    ]
    return mobilenetv3.MobileNetV3(setting, last_channel=32, num_classes=10), (3, 24, 24)


def build_efficientnet_b0():
    from torchvision.models import efficientnet

    conf = efficientnet.MBConvConfig
    setting = [
        conf(1, 3, 1, 8, 8, 1),
        conf(4, 3, 2, 8, 16, 2),
        conf(4, 5, 2, 16, 16, 1),
    ]
    model = efficientnet.EfficientNet(setting, dropout=0.2, stochastic_depth_prob=0.2, num_classes=10, last_channel=32)
    return model, (3, 24, 24)


def build_efficientnet_v2():
    from functools import partial

    from torchvision.models import efficientnet

    setting = [
        efficientnet.FusedMBConvConfig(1, 3, 1, 8, 8, 1),
        efficientnet.FusedMBConvConfig(2, 3, 2, 8, 16, 2),
        efficientnet.MBConvConfig(4, 3, 2, 16, 16, 1),
    ]
    norm = partial(nn.BatchNorm2d, eps=1e-03)
    model = efficientnet.EfficientNet(
        setting, dropout=0.2, stochastic_depth_prob=0.2, num_classes=10, norm_layer=norm, last_channel=32
    )
    return model, (3, 24, 24)


def build_mnasnet():
    from torchvision.models import mnasnet

    model = mnasnet.MNASNet(alpha=0.25, num_classes=10)
    d = [8, 8, 8, 8, 8, 16, 16, 16]
    m = 0.9997  # torchvision's _BN_MOMENTUM converted to PyTorch's convention
    model.layers = nn.Sequential(
        nn.Conv2d(3, d[0], 3, padding=1, stride=2, bias=False),
        nn.BatchNorm2d(d[0], momentum=1 - m),
        nn.ReLU(inplace=True),
        nn.Conv2d(d[0], d[0], 3, padding=1, stride=1, groups=d[0], bias=False),
        nn.BatchNorm2d(d[0], momentum=1 - m),
        nn.ReLU(inplace=True),
        nn.Conv2d(d[0], d[1], 1, padding=0, stride=1, bias=False),
        nn.BatchNorm2d(d[1], momentum=1 - m),
        mnasnet._stack(d[1], d[2], 3, 2, 3, 2, 1 - m),
        mnasnet._stack(d[2], d[3], 5, 2, 3, 1, 1 - m),
        mnasnet._stack(d[3], d[4], 5, 2, 3, 1, 1 - m),
        mnasnet._stack(d[4], d[5], 3, 1, 3, 2, 1 - m),
        mnasnet._stack(d[5], d[6], 5, 2, 3, 1, 1 - m),
        mnasnet._stack(d[6], d[7], 3, 1, 3, 1, 1 - m),
        nn.Conv2d(d[7], 32, 1, padding=0, stride=1, bias=False),
        nn.BatchNorm2d(32, momentum=1 - m),
        nn.ReLU(inplace=True),
    )
    model.classifier = nn.Sequential(nn.Dropout(p=0.2, inplace=True), nn.Linear(32, 10))
    return model, (3, 24, 24)


def build_shufflenet_v2():
    from torchvision.models import shufflenetv2

    return shufflenetv2.ShuffleNetV2([2, 2, 1], [8, 16, 16, 32, 32], num_classes=10), (3, 24, 24)


def build_squeezenet():
    # 33x33 so the ceil_mode max pools really round up
    from torchvision.models import squeezenet

    model = squeezenet.SqueezeNet("1_1", num_classes=10)
    Fire = squeezenet.Fire
    model.features = nn.Sequential(
        nn.Conv2d(3, 16, kernel_size=3, stride=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 4, 8, 8),
        Fire(16, 4, 8, 8),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 8, 16, 16),
        Fire(32, 8, 16, 16),
    )
    model.classifier = nn.Sequential(
        nn.Dropout(p=0.5), nn.Conv2d(32, 10, kernel_size=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
    )
    return model, (3, 33, 33)


def build_squeezenet_1_0():
    # SqueezeNet 1.0 stem: 7x7 stride 2 then ceil-mode pools; odd size again
    from torchvision.models import squeezenet

    model = squeezenet.SqueezeNet("1_0", num_classes=10)
    Fire = squeezenet.Fire
    model.features = nn.Sequential(
        nn.Conv2d(3, 16, kernel_size=7, stride=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 4, 8, 8),
        Fire(16, 8, 16, 16),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(32, 8, 16, 16),
    )
    model.classifier = nn.Sequential(
        nn.Dropout(p=0.5), nn.Conv2d(32, 10, kernel_size=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
    )
    return model, (3, 37, 37)


def build_densenet():
    from torchvision.models import densenet

    model = densenet.DenseNet(growth_rate=4, block_config=(2, 3, 2), num_init_features=8, bn_size=2, num_classes=10)
    return model, (3, 24, 24)


def build_googlenet():
    # The real GoogLeNet forward (transform_input on, so the per-channel affine + concat is in the
    # graph), every stage swapped for a narrow one of the same kind.
    googlenet = importlib.import_module("torchvision.models.googlenet")

    model = googlenet.GoogLeNet(num_classes=10, aux_logits=False, transform_input=True, init_weights=True)
    Conv = googlenet.BasicConv2d
    Inc = googlenet.Inception
    model.conv1 = Conv(3, 8, kernel_size=7, stride=2, padding=3)
    model.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    model.conv2 = Conv(8, 8, kernel_size=1)
    model.conv3 = Conv(8, 16, kernel_size=3, padding=1)
    model.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    model.inception3a = Inc(16, 4, 4, 8, 2, 4, 4)  # -> 20
    model.inception3b = Inc(20, 8, 4, 8, 2, 4, 4)  # -> 24
    model.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    model.inception4a = Inc(24, 8, 4, 8, 2, 4, 4)
    model.inception4b = Inc(24, 8, 4, 8, 2, 4, 4)
    model.inception4c = nn.Identity()
    model.inception4d = nn.Identity()
    model.inception4e = Inc(24, 8, 6, 8, 2, 4, 4)
    model.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
    model.inception5a = Inc(24, 8, 6, 8, 2, 4, 4)
    model.inception5b = Inc(24, 12, 6, 12, 4, 4, 4)  # -> 32
    model.fc = nn.Linear(32, 10)
    return model, (3, 40, 40)


def build_inception_v3():
    # The real Inception3 graph (all of A..E, asymmetric 1x7/7x1 and 1x3/3x1 convs, split branches,
    # transform_input) with every BasicConv2d narrowed ~24x. Lazy convs infer their input widths, so
    # torchvision's hard-coded widths can stay where they are. 75x75 is the smallest input it accepts.
    from torchvision.models import inception

    def out_width(channels):
        return max(2, channels // 40)

    def conv_block(in_channels, out_channels, **kwargs):
        block = inception.BasicConv2d(3, out_width(out_channels), **kwargs)
        block.conv = nn.LazyConv2d(out_width(out_channels), bias=False, **kwargs)
        return block

    blocks = [
        conv_block,
        functools.partial(inception.InceptionA, conv_block=conv_block),
        functools.partial(inception.InceptionB, conv_block=conv_block),
        functools.partial(inception.InceptionC, conv_block=conv_block),
        functools.partial(inception.InceptionD, conv_block=conv_block),
        functools.partial(inception.InceptionE, conv_block=conv_block),
        inception.InceptionAux,
    ]
    model = inception.Inception3(
        num_classes=10, aux_logits=False, transform_input=True, inception_blocks=blocks, init_weights=False
    )
    model.fc = nn.LazyLinear(10)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 75, 75))  # materialises the lazy modules
    return model, (3, 75, 75)


def build_vgg_bn():
    # 28x28 -> 14x14 before AdaptiveAvgPool2d((7,7)), which exports as a 2x2/2 AveragePool.
    # (torch 1.13 refuses to export an adaptive pool whose output does not divide its input.)
    from torchvision.models import vgg

    model = vgg.VGG(vgg.make_layers([8, "M", 16, 8], batch_norm=True), num_classes=10, init_weights=True)
    model.classifier = nn.Sequential(
        nn.Linear(8 * 7 * 7, 16),
        nn.ReLU(True),
        nn.Dropout(p=0.5),
        nn.Linear(16, 16),
        nn.ReLU(True),
        nn.Dropout(p=0.5),
        nn.Linear(16, 10),
    )
    return model, (3, 28, 28)


def build_alexnet():
    # 59x59 -> 6x6 feature map, so AdaptiveAvgPool2d((6,6)) is the identity it is in the real net at
    # 224 (torch 1.13 cannot export the 1x1 -> 6x6 case). One max pool fewer than the real features.
    alexnet = importlib.import_module("torchvision.models.alexnet")

    model = alexnet.AlexNet(num_classes=10)
    model.features = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(8, 12, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.Conv2d(12, 12, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(12, 4, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )
    model.classifier = nn.Sequential(
        nn.Dropout(p=0.5),
        nn.Linear(4 * 6 * 6, 16),
        nn.ReLU(inplace=True),
        nn.Dropout(p=0.5),
        nn.Linear(16, 16),
        nn.ReLU(inplace=True),
        nn.Linear(16, 10),
    )
    return model, (3, 59, 59)


def build_regnet_x():
    from torchvision.models import regnet

    params = regnet.BlockParams.from_init_params(depth=4, w_0=8, w_a=8.0, w_m=2.0, group_width=4)
    return regnet.RegNet(params, num_classes=10, stem_width=8), (3, 24, 24)


def build_regnet_y():
    from torchvision.models import regnet

    params = regnet.BlockParams.from_init_params(depth=4, w_0=8, w_a=8.0, w_m=2.0, group_width=4, se_ratio=0.25)
    return regnet.RegNet(params, num_classes=10, stem_width=8), (3, 24, 24)


def build_vit():
    from torchvision.models import VisionTransformer

    model = VisionTransformer(
        image_size=24, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10
    )
    return model, (3, 24, 24)


def build_swin():
    from torchvision.models import SwinTransformer

    model = SwinTransformer(
        patch_size=[4, 4], embed_dim=8, depths=[2, 2], num_heads=[2, 2], window_size=[4, 4], num_classes=10
    )
    return model, (3, 32, 32)


def build_swin_v2():
    from torchvision.models import swin_transformer as st

    model = st.SwinTransformer(
        patch_size=[4, 4],
        embed_dim=8,
        depths=[2, 2],
        num_heads=[2, 2],
        window_size=[4, 4],
        num_classes=10,
        block=st.SwinTransformerBlockV2,
        downsample_layer=st.PatchMergingV2,
    )
    return model, (3, 32, 32)


def build_convnext():
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    model = ConvNeXt(block_setting=[CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], num_classes=10)
    return model, (3, 24, 24)


def build_maxvit():
    from torchvision.models import maxvit

    model = maxvit.MaxVit(
        input_size=(32, 32),
        stem_channels=8,
        partition_size=2,
        block_channels=[8, 16],
        block_layers=[1, 1],
        head_dim=4,
        stochastic_depth_prob=0.2,
        num_classes=10,
    )
    return model, (3, 32, 32)


# name -> (builder, what the fixture exercises). Order: simplest graphs first.
MODELS = [
    ("alexnet_tiny", build_alexnet, "Conv 11x11/s4 pad 2, MaxPool, AdaptiveAvgPool 6x6->6x6 (AveragePool 1x1), Flatten, Gemm chain"),
    ("vgg_bn_tiny", build_vgg_bn, "Conv+BN+ReLU, MaxPool, AdaptiveAvgPool 14x14->7x7 (AveragePool 2x2/2), Flatten, Gemm chain"),
    ("squeezenet1_1_tiny", build_squeezenet, "Fire (Concat), ceil_mode MaxPool at 33x33, conv classifier"),
    ("squeezenet1_0_tiny", build_squeezenet_1_0, "7x7/s2 stem, ceil_mode MaxPool at 37x37, Fire"),
    ("resnet_basic_tiny", build_resnet_basic, "ResNet BasicBlock, 7x7/s2 stem, MaxPool pad 1, projection shortcuts"),
    ("resnext_bottleneck_tiny", build_resnext_bottleneck, "ResNet Bottleneck, grouped 3x3 (groups=2), identity+projection"),
    ("mobilenet_v2_tiny", build_mobilenet_v2, "inverted residuals, depthwise conv, ReLU6 (Clip)"),
    ("mobilenet_v3_small_tiny", build_mobilenet_v3_small, "hardswish, SE with hardsigmoid, depthwise 5x5"),
    ("mobilenet_v3_large_tiny", build_mobilenet_v3_large_dilated, "MobileNetV3 large pattern, dilated depthwise conv"),
    ("efficientnet_b0_tiny", build_efficientnet_b0, "MBConv, SiLU, SE (sigmoid), stochastic depth in eval"),
    ("efficientnet_v2_tiny", build_efficientnet_v2, "FusedMBConv + MBConv, BN eps 1e-3"),
    ("mnasnet_tiny", build_mnasnet, "MNASNet stacks, 5x5 depthwise, no-activation projections"),
    ("shufflenet_v2_tiny", build_shufflenet_v2, "channel shuffle (Shape/Reshape/Transpose), chunk (Slice), Concat, mean (ReduceMean)"),
    ("densenet_tiny", build_densenet, "dense blocks (Concat-heavy), standalone BatchNormalization (pre-activation), AvgPool transitions"),
    ("googlenet_tiny", build_googlenet, "Inception branches, ceil_mode pools, transform_input (Slice/Mul/Add/Concat)"),
    ("inception_v3_tiny", build_inception_v3, "Inception3 A-E, 1x7/7x1 and 1x3/3x1 convs, AvgPool pad 1, 75x75"),
    ("regnet_x_tiny", build_regnet_x, "RegNet X: grouped bottlenecks"),
    ("regnet_y_tiny", build_regnet_y, "RegNet Y: grouped bottlenecks + SE"),
    ("convnext_tiny_tiny", build_convnext, "ConvNeXt: 7x7 depthwise, LayerNorm (channels-last), GELU, layer scale"),
    ("vit_tiny", build_vit, "ViT: patch conv, class token (Expand/Concat), MultiheadAttention as MatMul/Softmax, LayerNorm, GELU (Erf)"),
    ("swin_tiny", build_swin, "Swin: window attention, shifted windows (roll as Slice+Concat), mask built at run time (Range/ScatterND/Mod), relative position bias, patch merging"),
    ("swin_v2_tiny", build_swin_v2, "Swin V2: cosine attention (ReduceL2, Exp of clipped logit scale), CPB MLP, post-norm, PatchMergingV2"),
    ("maxvit_tiny", build_maxvit, "MaxViT: MBConv + block/grid attention (Einsum), relative position bias, Tanh head"),
]


def generate(name, builder, out_dir, compact=True):
    torch.manual_seed(seed_for(name))
    model, (c, h, w) = builder()
    model.eval()
    calibration = torch.randn(8, c, h, w)
    make_typical(model, calibration)
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        logits = model(x)
        # eval mode must make samples independent: batch 1 gives row 0 of batch 2
        logits_one = model(x[:1])
    if not torch.allclose(logits[:1], logits_one, rtol=1e-4, atol=1e-5 * float(logits.abs().max())):
        raise RuntimeError("%s: batch 1 and batch 2 disagree in PyTorch" % name)
    onnx_path = os.path.join(out_dir, name + ".onnx")
    export_onnx(model, x, onnx_path)
    if compact:
        compact_names(onnx_path)
    params = sum(p.numel() for p in model.parameters())
    reference, fp32_error = float64_reference(model, x, logits)
    np.save(os.path.join(out_dir, name + ".input.npy"), np.ascontiguousarray(x.numpy(), dtype=np.float32))
    np.save(os.path.join(out_dir, name + ".logits.npy"), np.ascontiguousarray(reference.numpy(), dtype=np.float32))
    return {
        "name": name,
        "shape": (2, c, h, w),
        "classes": logits.shape[1],
        "params": params,
        "onnx_bytes": os.path.getsize(onnx_path),
        "max_logit": float(reference.abs().max()),
        "fp32_error": fp32_error,
    }


@torch.no_grad()
def float64_reference(model, x, logits32):
    """Returns (logits computed in float64, max|float32 - float64| / max|float64|); converts model.

    The reference is the float64 result, so an fp32 engine is measured against the exact answer and
    not against PyTorch's own fp32 rounding; the second value is that rounding, the noise floor.
    """
    logits64 = model.double()(x.double())
    error = float((logits32.double() - logits64).abs().max() / logits64.abs().max())
    return logits64, error


def check_onnx(path):
    import onnx

    model = onnx.load(path)
    onnx.checker.check_model(model)
    ops = sorted({node.op_type for node in model.graph.node})
    return ops


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated model names")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--keep-names", action="store_true", help="keep torch's long node/value names")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    rows = []
    failed = 0
    for name, builder, note in MODELS:
        if only and name not in only:
            continue
        try:
            info = generate(name, builder, args.out, compact=not args.keep_names)
        except Exception as exc:  # report and go on: one broken export should not hide the others
            failed += 1
            print("%-26s FAILED: %s" % (name, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__))
            continue
        ops = check_onnx(os.path.join(args.out, name + ".onnx"))
        info["note"] = note
        rows.append(info)
        print(
            "%-26s params %7d  onnx %7d B  input %-10s  max|logit| %7.4g  torch fp32 error %.1e  ops: %s"
            % (name, info["params"], info["onnx_bytes"], "x".join(map(str, info["shape"])), info["max_logit"],
               info["fp32_error"], " ".join(ops))
        )

    if only is None:
        with open(os.path.join(args.out, "manifest.tsv"), "w", newline="\n") as f:
            f.write("name\tonnx\tinput\tlogits\tinput_shape\tmax_abs_logit\ttolerance_rel\ttorch_fp32_error\texercises\n")
            for info in rows:
                f.write(
                    "%s\t%s.onnx\t%s.input.npy\t%s.logits.npy\t%s\t%.6g\t1e-3\t%.1e\t%s\n"
                    % (
                        info["name"], info["name"], info["name"], info["name"],
                        ",".join(map(str, info["shape"])), info["max_logit"], info["fp32_error"], info["note"],
                    )
                )
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print("%d models written, %d failed; %s holds %d bytes" % (len(rows), failed, args.out, total))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
