import pytest
import torch

import math

from models import CNN13, ETFClassifier, SimpleCNN_MNIST, make_model, make_optimizer, simplex_etf


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
    """d/dW Σ_i Σ_c (W z_i + b)_c = Σ_i z_i in every row and d/db = N (written out); every other parameter gets a
    gradient that is not all zero: the latent codes, which the penalty acts on, are not detached anywhere."""
    torch.manual_seed(0)
    model = SimpleCNN_MNIST()
    z = model.latent(torch.randn(4, 1, 28, 28))
    (model.classifier(z).sum() + z.pow(2).sum()).backward()
    W, b = model.classifier.weight, model.classifier.bias
    torch.testing.assert_close(W.grad, z.detach().sum(0).expand_as(W))
    torch.testing.assert_close(b.grad, torch.full_like(b, 4.0))
    latent = [(n, p) for n, p in model.named_parameters() if not n.startswith("classifier.")]
    assert latent and all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in latent), \
        [n for n, p in latent if p.grad is None or p.grad.abs().sum() == 0]


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="CNN13.*SimpleCNN_MNIST"):
        make_model("ResNet18", 10, 3)



# ------------------------------------------------------------------------------------------ the ETF classifier

@pytest.mark.parametrize("p, C", [(128, 10), (10, 10), (7, 3)])
def test_simplex_etf_gram_matrix(p, C):
    W = simplex_etf(p, C, seed=0)                                                   # (C, p)
    gram = W @ W.T
    target = torch.full((C, C), -1.0 / (C - 1), dtype=torch.float64).fill_diagonal_(1.0)
    torch.testing.assert_close(gram, target, rtol=0, atol=1e-12)
    torch.testing.assert_close(W.sum(0), torch.zeros(p, dtype=torch.float64), rtol=0, atol=1e-12)  # centred
    torch.testing.assert_close(simplex_etf(p, C, seed=0), W, rtol=0, atol=0)       # fixed by its seed


def test_etf_classifier_is_scale_times_frame():
    clf = ETFClassifier(128, 10)
    assert clf.scale.item() == pytest.approx(1 / math.sqrt(3))
    assert not clf.weight.requires_grad and not clf.bias.requires_grad and clf.scale.requires_grad
    assert (clf.bias == 0).all()
    z = torch.randn(5, 128)
    torch.testing.assert_close(clf(z), clf.scale * (z @ clf.weight.T))
    # the starting logits have the size of a default nn.Linear's: E‖w_c‖² = p · (2/√p)²/12 = 1/3
    rows = torch.stack([torch.nn.Linear(128, 10).weight.norm(dim=1) for _ in range(200)])
    assert rows.pow(2).mean().item() == pytest.approx(clf.scale.item() ** 2, rel=0.02)


def test_etf_classifier_needs_a_latent_dimension_of_at_least_c():
    with pytest.raises(ValueError, match="p >= C"):
        ETFClassifier(9, 10)


def test_same_backbone_initialisation_with_and_without_the_etf():
    torch.manual_seed(3)
    plain = make_model("SimpleCNN_MNIST", 10, 1)
    after_plain = torch.rand(3)
    torch.manual_seed(3)
    etf = make_model("SimpleCNN_MNIST", 10, 1, etf_classifier=True)
    after_etf = torch.rand(3)
    for (name, a), (_, b) in zip(plain.latent.state_dict().items(), etf.latent.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    torch.testing.assert_close(after_plain, after_etf, rtol=0, atol=0)  # the global generator is where it was
    assert isinstance(etf.classifier, ETFClassifier) and isinstance(plain.classifier, torch.nn.Linear)


def test_sgd_with_weight_decay_moves_the_scale_not_the_frame():
    torch.manual_seed(0)
    model = make_model("SimpleCNN_MNIST", 10, 1, etf_classifier=True)
    opt = make_optimizer(model, lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.5)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    assert opt.param_groups[1]["params"] == [model.classifier.scale]
    frame, bias = model.classifier.weight.clone(), model.classifier.bias.clone()
    conv = model.latent[0].weight.clone()
    x, y = torch.randn(6, 1, 28, 28), torch.arange(6)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        assert model.classifier.weight.grad is None and model.classifier.bias.grad is None
        opt.step()
    torch.testing.assert_close(model.classifier.weight, frame, rtol=0, atol=0)
    torch.testing.assert_close(model.classifier.bias, bias, rtol=0, atol=0)
    assert model.classifier.scale.item() != pytest.approx(1 / math.sqrt(3))   # it learns
    assert not torch.equal(model.latent[0].weight, conv)


def test_the_scale_is_not_decayed():
    # no gradient on the scale (a zero loss through it): with decay it would shrink; in its own group it stays
    model = make_model("SimpleCNN_MNIST", 10, 1, etf_classifier=True)
    opt = make_optimizer(model, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.5)
    before = model.classifier.scale.item()
    (0.0 * model.classifier.scale).backward()
    opt.step()
    assert model.classifier.scale.item() == before
    decayed = torch.optim.SGD([model.classifier.scale], lr=0.1, weight_decay=0.5)  # the control: decay would move it
    decayed.step()
    assert model.classifier.scale.item() < before


def test_without_the_etf_the_optimiser_is_one_group_over_every_parameter():
    model = make_model("SimpleCNN_MNIST", 10, 1)
    opt = make_optimizer(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == list(model.parameters())
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["weight_decay"] == 1e-3


def test_etf_model_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = make_model("SimpleCNN_MNIST", 10, 1, etf_classifier=True)
    opt = make_optimizer(model, lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-3)
    torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.arange(4)).backward()
    opt.step()
    torch.save(dict(model=model.state_dict(), optimizer=opt.state_dict()), tmp_path / "ckpt.pt")
    ck = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    torch.manual_seed(1)  # another initialisation: everything must come from the checkpoint
    other = make_model("SimpleCNN_MNIST", 10, 1, etf_classifier=True)
    other_opt = make_optimizer(other, lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-3)
    other.load_state_dict(ck["model"])
    other_opt.load_state_dict(ck["optimizer"])
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    assert "classifier.scale" in ck["model"]
    assert other_opt.param_groups[1]["weight_decay"] == 0.0
