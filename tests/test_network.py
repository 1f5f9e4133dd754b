import torch

from napari_dncnn import DnCNN, fold_batchnorm, receptive_field


def test_architecture_matches_the_paper():
    net = DnCNN(1, depth=17, features=64)
    convs = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in net.body if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 17 and len(bns) == 15
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert convs[0].in_channels == 1 and convs[-1].out_channels == 1
    assert isinstance(net.body[1], torch.nn.ReLU) and isinstance(net.body[-1], torch.nn.Conv2d)
    assert sum(p.numel() for p in net.parameters()) == 556_097  # the paper's ~0.56M parameters
    x = torch.rand(2, 1, 37, 41)
    assert net(x).shape == x.shape
    assert DnCNN(3, 5, 8)(torch.rand(1, 3, 20, 21)).shape == (1, 3, 20, 21)


def test_receptive_field_is_measured_by_gradients(tiny_gray):
    net = tiny_gray  # depth 5
    x = torch.rand(1, 1, 31, 31, requires_grad=True)
    net(x)[0, 0, 15, 15].backward()
    nz = torch.nonzero(x.grad[0, 0])
    side = int(nz[:, 0].max() - nz[:, 0].min() + 1)
    assert side == receptive_field(5) == 11 == net.receptive_field


def test_folded_batchnorm_gives_the_same_output(tiny_gray):
    net = tiny_gray.eval()
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 1, 33, 29)
    with torch.no_grad():
        a, b = net(x), folded(x)
    assert a.abs().max() > 1e-3  # the randomised statistics matter
    assert torch.allclose(a, b, atol=1e-5, rtol=0)


def test_untrained_network_is_the_identity_restoration():
    net = DnCNN(1, 5, 8).eval()
    with torch.no_grad():
        assert torch.count_nonzero(net(torch.rand(1, 1, 16, 16))) == 0


def test_space_to_depth_form_keeps_shape_on_odd_sizes_and_sees_twice_as_far():
    torch.manual_seed(0)
    net = DnCNN(1, depth=4, features=8, space_to_depth=2)
    with torch.no_grad():
        net.body[-1].weight.normal_(std=0.1)
    assert net.body[0].in_channels == 4 and net.body[-1].out_channels == 4
    assert net(torch.rand(1, 1, 37, 41)).shape == (1, 1, 37, 41)
    x = torch.rand(1, 1, 41, 41, requires_grad=True)
    net.eval()(x)[0, 0, 20, 20].backward()
    nz = torch.nonzero(x.grad[0, 0])
    reach = int(max(20 - nz.min(), nz.max() - 20))
    assert (
        reach == 2 * 4 + 1 <= net.receptive_radius == 10
    )  # radius rounded up to the unshuffle grid
    assert receptive_field(4, 2) == 21 == net.receptive_field


def test_batchnorm_free_form_has_a_bias_in_every_conv():
    net = DnCNN(1, depth=5, features=8, batchnorm=False)
    convs = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 and all(c.bias is not None for c in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert fold_batchnorm(net)(torch.rand(1, 1, 9, 9)).shape == (1, 1, 9, 9)
