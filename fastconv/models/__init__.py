"""Classic CNNs built from fastconv.nn (default) or torch.nn layers by the same code:

    model = fastconv.models.resnet18(num_classes=10, width=0.25)                 # fastconv layers
    ref = fastconv.models.resnet18(num_classes=10, width=0.25, layers=torch.nn)  # torch layers
    ref.load_state_dict(model.state_dict())                                        # same keys

Every builder takes num_classes, in_channels and a width (or base/growth) argument so tiny versions run on
a CPU. Non-conv layers (BatchNorm2d, ReLU, Linear, Dropout) are torch's in both builds.
"""
from .alexnet import AlexNet
from .densenet import DenseNet, densenet121
from .dilated import DilatedContextNet
from .googlenet import GoogLeNet
from .lenet import LeNet5, MnistCNN
from .mobilenet import MobileNetV2
from .resnet import ResNet, resnet18, resnet50
from .segnet import SegNet
from .unet import UNet
from .vgg import VGG, vgg11, vgg16
from .wavenet import WaveNet

__all__ = ["AlexNet", "DenseNet", "densenet121", "DilatedContextNet", "GoogLeNet", "LeNet5", "MnistCNN",
           "MobileNetV2", "ResNet", "resnet18", "resnet50", "SegNet", "UNet", "VGG", "vgg11", "vgg16", "WaveNet"]
