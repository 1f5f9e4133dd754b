"""Shared fixtures: tiny DnCNNs with non-trivial batch-norm state, and their weights files."""

from __future__ import annotations

import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch

from napari_dncnn import DnCNN, save_weights


def randomised(net: DnCNN, seed: int = 0) -> DnCNN:
    """Give every BN random running statistics and affine parameters, and the last layer weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
        last = net.body[-1]
        last.weight.copy_(torch.randn(last.weight.shape, generator=g) * 0.05)
        last.bias.copy_(torch.randn(last.bias.shape, generator=g) * 0.01)
    return net.eval()


def random_weights(folder, depth: int, features: int, seed: int) -> str:
    """A weights file of a gray DnCNN with random weights and BN state, for runs that must take
    a while (to kill or interrupt them mid-way)."""
    torch.manual_seed(seed)
    path = folder / f"random-{depth}-{features}-{seed}.safetensors"
    net = randomised(DnCNN(1, depth=depth, features=features), seed=seed)
    save_weights(net, path, {"note": "test weights"})
    return str(path)


def kill_a_worker_mid_run(address: str, run, ready, ours=lambda key: True) -> str | None:
    """SIGKILL a worker busy with one of ``ours`` tasks once ``ready()``, while the thread ``run``
    is alive; wait for ``run`` to end and the nanny to restart the worker.  The killed address."""
    import os
    import signal
    import time

    from distributed import Client

    killed = None
    with Client(address, set_as_default=False) as client:
        deadline = time.time() + 120
        while killed is None and time.time() < deadline and run.is_alive():
            busy = [w for w, keys in client.processing().items() if any(map(ours, keys))]
            if busy and ready():
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed = busy[0]
            time.sleep(0.05)
        run.join(timeout=300)
        client.wait_for_workers(2, timeout=60)  # for the next tests
    return killed


@pytest.fixture(scope="session")
def cluster():
    """A LocalCluster of 2 worker processes x 1 thread on loopback, shared by the session."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as c:
        yield c


@pytest.fixture
def tiny_gray() -> DnCNN:
    torch.manual_seed(0)
    return randomised(DnCNN(1, depth=5, features=8))


@pytest.fixture
def tiny_color() -> DnCNN:
    torch.manual_seed(1)
    return randomised(DnCNN(3, depth=4, features=8), seed=1)


@pytest.fixture
def tiny_weights(tmp_path_factory, tiny_gray) -> str:
    path = tmp_path_factory.mktemp("weights") / "tiny-gray.safetensors"
    save_weights(tiny_gray, path, {"note": "test weights"})
    return str(path)


@pytest.fixture
def tiny_color_weights(tmp_path_factory, tiny_color) -> str:
    path = tmp_path_factory.mktemp("weights") / "tiny-color.safetensors"
    save_weights(tiny_color, path, {"note": "test weights"})
    return str(path)


@pytest.fixture
def camera_crop() -> np.ndarray:
    from skimage import data

    img = data.camera()[100:196, 150:270].copy()  # 96 x 120
    img[0, 0], img[0, 1] = 0, 255  # full 0..255 range, so every dtype normalises alike
    return img


@pytest.fixture
def astronaut_crop() -> np.ndarray:
    from skimage import data

    return data.astronaut()[40:120, 180:280].copy()  # 80 x 100 x 3


# ---------------------------------------------------------------- downloads from 127.0.0.1


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""
    cut = False  # announce the whole file, send half, hang up
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 2] if self.cut else self.body)
        self.wfile.flush()
        if self.cut:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()


def register_file(name: str, url: str, sha256: str, size: int, monkeypatch):
    """Point the registry's model ``name`` at another file (for this test only)."""
    import dataclasses

    from napari_dncnn.weights import registry

    entry = registry.ModelFile(url, sha256, size)
    spec = dataclasses.replace(registry.MODELS[name], file=entry)
    monkeypatch.setitem(registry.MODELS, name, spec)
    return entry


@pytest.fixture
def tiny_official(tmp_path, monkeypatch, server):
    """The name 'dncnn3' pointed at the test server, serving a tiny .mat; the cache in a temporary folder.

    Returns the registry's file entry (``url``, ``sha256``, ``size``, ``filename``), the cache, the
    server and its handler."""
    httpd, handler = server
    from test_foreign import bn_free_net, matconvnet_layers, write_matconvnet

    mat = write_matconvnet(tmp_path / "src.mat", matconvnet_layers(bn_free_net()))
    handler.body = mat.read_bytes()
    sha = hashlib.sha256(handler.body).hexdigest()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/model/DnCNN3.mat"
    entry = register_file("dncnn3", url, sha, len(handler.body), monkeypatch)
    cache = tmp_path / "cache"
    monkeypatch.setenv("NAPARI_DNCNN_CACHE", str(cache))
    return entry, cache, httpd, handler
