import pytest
import torch

from models import CNN13, SimpleCNN_MNIST, make_model


@pytest.mark.parametrize("cls, shape", [(SimpleCNN_MNIST, (5, 1, 28, 28)), (CNN13, (3, 3, 32, 32))])
def test_shapes_and_classifier_of_latent_is_the_model(cls, shape):
    torch.manual_seed(0)
    model = cls(num_classes=7).eval()  # eval: dropout and batch statistics out of the way
    x = torch.randn(shape)
    z = model.latent(x)
    assert z.shape == (shape[0], 128)
    assert model.classifier.weight.shape == (7, 128) and model.classifier.bias.shape == (7,)
    assert model(x).shape == (shape[0], 7)
    torch.testing.assert_close(model.classifier(z), model(x), rtol=0, atol=0)


def test_simple_cnn_layout_is_hofer_et_al():
    convs = [m for m in SimpleCNN_MNIST().modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 32, 64, 128]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in SimpleCNN_MNIST().modules()) == 4


def test_cnn13_layout_is_laine_and_aila():
    m = CNN13()
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128] * 3 + [256] * 3 + [512, 256, 128]
    assert [c.kernel_size[0] for c in convs] == [3] * 7 + [1, 1]
    assert convs[6].padding == (0, 0)                       # the 3×3 conv512 is 'valid'
    assert sum(isinstance(c, torch.nn.Dropout) for c in m.modules()) == 2
    assert sum(isinstance(c, torch.nn.BatchNorm2d) for c in m.modules()) == 9


def test_one_backward_reaches_latent_and_classifier():
    model = SimpleCNN_MNIST()
    z = model.latent(torch.randn(4, 1, 28, 28))
    (model.classifier(z).sum() + z.pow(2).sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="CNN13.*SimpleCNN_MNIST"):
        make_model("ResNet18", 10, 3)
