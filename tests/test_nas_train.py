"""Supernet, subnet extraction, training, measurement, predictor, datasets."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install naas-tl[gpu])")

from naas_tl.errors import NaasError  # noqa: E402
from naas_tl.nas.data import load_dataset  # noqa: E402
from naas_tl.nas.predictor import AccuracyPredictor, kendall_tau  # noqa: E402
from naas_tl.nas.space import SearchSpace  # noqa: E402
from naas_tl.nas.supernet import (SuperNet, extract_subnet, proxy_resolution,  # noqa: E402
                                  resize_input)
from naas_tl.nas.train import evaluate_subnet, resolve_device, train_supernet  # noqa: E402

SPACE = SearchSpace()
#: A small space (one choice per elastic dim, all three operators) for fast training tests.
TINY = SearchSpace(resolutions=(128,), depth_choices=(2,), kernel_choices=(3,),
                   expand_choices=(3,))


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return load_dataset()


def _configs(space, n, seed=0):
    rng = np.random.default_rng(seed)
    cfgs = [space.largest(ops="adder"), space.smallest(ops="shift"), space.reference()]
    return cfgs + [space.sample(rng) for _ in range(n)]


def test_supernet_and_extracted_subnet_agree():
    torch.manual_seed(0)
    net = SuperNet(SPACE)
    # a few training steps so that BatchNorm statistics and weights are not at their init
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    for cfg in _configs(SPACE, 2, seed=1)[:3]:
        r = proxy_resolution(cfg)
        net.train()
        net(torch.randn(8, 3, r, r), cfg).logsumexp(1).mean().backward()
        opt.step()
        opt.zero_grad()
    net.eval()
    for cfg in _configs(SPACE, 2):
        r = proxy_resolution(cfg)
        x = torch.randn(3, 3, r, r)
        sub = extract_subnet(net, cfg).eval()
        with torch.no_grad():
            a, b = net(x, cfg), sub(x)
        assert a.shape == b.shape == (3, 10)
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), cfg.name
        ops = {getattr(m, "naas_op", "conv") for m in sub.modules()
               if isinstance(m, torch.nn.Conv2d)}
        assert ops == {"conv"} | set(cfg.op_counts())


def test_proxy_scale():
    net = SuperNet(SPACE)
    assert net.proxy.widths == (8, 8, 16, 24, 40)
    assert net.proxy.strides == (2, 2, 2, 1, 1)       # last stride-2 dropped
    assert [proxy_resolution(SPACE.make(r, (2,) * 5, 3, 3, "conv"))
            for r in SPACE.resolutions] == [16, 20, 24, 28]
    assert resize_input(torch.zeros(2, 3, 8, 8), 20).shape == (2, 3, 20, 20)


def test_training_is_deterministic_and_learns(digits):
    kw = dict(epochs=1, batch_size=64, seed=3, progress=False, num_threads=1)
    a = train_supernet(TINY, digits, max_steps=4, **kw)
    b = train_supernet(TINY, digits, max_steps=4, **kw)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    net = train_supernet(TINY, digits, **kw)            # one epoch (17 steps)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = TINY.largest(ops="conv")
    acc = evaluate_subnet(net, cfg, digits, "val", num_threads=1)
    assert 0.3 < acc <= 1.0                               # chance is 0.1
    assert evaluate_subnet(net, cfg, digits, "val", num_threads=1) == acc
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)   # supernet untouched
    mixed = TINY.make(128, (2,) * 5, 3, 3, ("conv", "shift", "adder", "conv") * 2 +
                      ("conv",) * 2)
    assert 0.0 <= evaluate_subnet(net, mixed, digits, "test", num_threads=1) <= 1.0


def test_device_errors():
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(NaasError, match="--device"):
            resolve_device("cuda")
    with pytest.raises(NaasError, match="--device"):
        resolve_device("tpu")


def test_kendall_tau_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 5, 30), rng.random(30)
        assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_predictor_fits_monotone_targets(tmp_path):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    cfgs = [SPACE.sample(rng) for _ in range(150)]

    def smooth(c):     # deeper, higher resolution, fewer adder blocks -> better
        return (0.02 * sum(c.depths) + 0.0005 * c.resolution
                - 0.03 * c.op_counts().get("adder", 0))

    def sparse(c):     # a few slots dominate (as the adder blocks opening stages 2 and 3)
        return (0.9 - 0.3 * (c.ops[8] == "adder") - 0.15 * (c.ops[4] == "adder")
                + 0.0003 * c.resolution - 0.01 * c.op_counts().get("adder", 0))

    for target in (smooth, sparse):
        y = np.array([target(c) for c in cfgs])
        p = AccuracyPredictor(SPACE, seed=0).fit(cfgs[:100], y[:100])
        assert kendall_tau(p.predict(cfgs[100:]), y[100:]) > 0.8, target.__name__
    p.save(tmp_path / "p.json")
    q = AccuracyPredictor.load(tmp_path / "p.json")
    assert np.allclose(q.predict(cfgs[100:]), p.predict(cfgs[100:]))
    mlp = AccuracyPredictor(SPACE, kind="mlp", n_models=1).fit(cfgs[:100], y[:100])
    assert mlp.predict(cfgs[100:]).shape == (50,)
    with pytest.raises(NaasError):
        AccuracyPredictor(SPACE, kind="svm")


def _one_line_error(path, match):
    with pytest.raises(NaasError, match=match) as info:
        load_dataset(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_bad_data_dirs(tmp_path):
    _one_line_error(tmp_path / "missing", "does not exist")
    f = tmp_path / "file.txt"
    f.write_text("x")
    _one_line_error(f, "expected a directory")
    _one_line_error(tmp_path, "at least two class")            # empty directory
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    _one_line_error(tmp_path, "at least two class")
    bad = tmp_path / "cifar"
    bad.mkdir()
    (bad / "data_batch_1").write_bytes(b"garbage")
    (bad / "test_batch").write_bytes(b"garbage")
    _one_line_error(bad, "CIFAR")


def test_image_folder_and_cifar(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    for c in ("a", "b", "c"):
        (root / c).mkdir(parents=True)
        for i in range(10):
            arr = rng.integers(0, 255, (12, 9, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
    d = load_dataset(root, image_size=16)
    assert d.num_classes == 3 and d.train_x.shape[1:] == (3, 16, 16)
    assert sum(d.sizes().values()) == 30 and min(d.sizes().values()) > 0
    assert d.images("val", 20).shape[-1] == 20
    cifar = tmp_path / "cifar"
    cifar.mkdir()
    for name, n in (("data_batch_1", 40), ("data_batch_2", 40), ("test_batch", 20)):
        blob = {b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                b"labels": list(rng.integers(0, 10, n))}
        (cifar / name).write_bytes(pickle.dumps(blob))
    d = load_dataset(cifar)
    sizes = d.sizes()      # stratified per class: train/val only about 80/20 of 80
    assert sizes["test"] == 20 and sizes["train"] + sizes["val"] == 80
    assert 10 <= sizes["val"] <= 25
    assert d.train_x.shape[1:] == (3, 32, 32) and d.num_classes == 10


def test_digits_split(digits):
    sizes = digits.sizes()
    assert sum(sizes.values()) == 1797 and digits.num_classes == 10
    assert digits.train_x.shape[1:] == (3, 8, 8)
    again = load_dataset(seed=0)
    assert torch.equal(again.val_y, digits.val_y)
    assert not torch.equal(load_dataset(seed=1).val_y, digits.val_y)


def test_build_accuracy_model_reuses_out_dir(tmp_path, digits):
    from naas_tl.nas.proxy import build_accuracy_model
    msgs: list[str] = []
    kw = dict(n_measured=8, epochs=1, seed=0, num_threads=1, out_dir=tmp_path,
              data=digits)
    m = build_accuracy_model(TINY, progress=msgs.append, **kw)
    assert len(m.measured) == 8 and m.held_out == 2
    assert (tmp_path / "supernet.pt").is_file() and (tmp_path / "measured.json").is_file()
    big = TINY.largest()
    assert m.measured[0]["name"] == big.name and m.predict([big]).shape == (1,)
    assert m.measure(big) == m.measured[0]["accuracy"]
    assert 0 <= m.measure(big, "test") <= 1
    msgs.clear()
    m2 = build_accuracy_model(TINY, progress=msgs.append, **kw)
    assert any("reusing the supernet" in s for s in msgs)
    assert any("reusing 8 measurements" in s for s in msgs)
    assert [x["accuracy"] for x in m2.measured] == [x["accuracy"] for x in m.measured]
    assert m2.tau == m.tau or (np.isnan(m2.tau) and np.isnan(m.tau))
    # learn(): new networks are measured and join the predictor's training set; ones
    # already measured are not added twice.
    new = [c for c in (TINY.sample(s) for s in range(40))
           if c.name not in {x["name"] for x in m.measured}][:3]
    accs = m.learn(new + [big])
    assert accs == [m.measure(c) for c in new + [big]]
    assert [x["name"] for x in m.learned] == [c.name for c in new]
    train_cfgs, train_y = m.predictor._train
    assert len(train_cfgs) == 8 + 3 and train_y[-3:] == accs[:3]
    assert len(m.measured) == 8 and m.tau == m2.tau or np.isnan(m.tau)
