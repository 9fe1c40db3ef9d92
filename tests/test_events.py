"""The ADC2021 reader: published layout and generated files, and every kind of bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from l1ml.data.events import list_samples, read_sample
from l1ml.data.layout import SLOT_CLASS, feature_names, to_features
from l1ml.errors import L1mlError


def adc2021_events(n: int = 5) -> np.ndarray:
    """Valid events: MET, one e/gamma, one muon and two jets each, zero-padded elsewhere."""
    p = np.zeros((n, 19, 4), dtype=np.float64)
    for slot, pt in [(0, 30.0), (1, 25.0), (5, 12.0), (9, 60.0), (10, 20.0)]:
        p[:, slot] = [pt, 0.0 if slot == 0 else 1.2, -2.0, SLOT_CLASS[slot]]
    return p


def write_adc2021(path, particles, name="Particles"):
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=particles, compression="gzip")
        f.create_dataset("Particles_Names", data=np.array([b"Pt", b"Eta", b"Phi", b"Class"]))
    return path


def test_reads_published_layout(tmp_path):
    path = write_adc2021(tmp_path / "Ato4l_lepFilter_13TeV.h5", adc2021_events())
    assert list_samples(path) == ["Ato4l_lepFilter_13TeV"]
    s = read_sample(path)
    assert s.name == "Ato4l_lepFilter_13TeV" and len(s) == 5 and s.particles.dtype == np.float32
    assert s.features().shape == (5, 57)
    assert s.clipped == {}


def test_feature_order_is_slot_major():
    p = adc2021_events(1)
    f = to_features(p)
    names = feature_names()
    assert len(names) == 57 and names[:4] == ["MET_pt", "MET_eta", "MET_phi", "eg1_pt"]
    assert f[0, names.index("jet1_pt")] == 60.0 and f[0, names.index("mu1_phi")] == -2.0


def test_slicing(tmp_path):
    p = adc2021_events(10)
    p[:, 0, 0] = np.arange(10)
    path = write_adc2021(tmp_path / "x.h5", p)
    assert read_sample(path, start=3, stop=6).particles[:, 0, 0].tolist() == [3, 4, 5]


def check_error(path, *fragments, **kwargs):
    with pytest.raises(L1mlError) as e:
        read_sample(path, **kwargs)
    msg = str(e.value)
    assert str(path) in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


def test_wrong_dataset_name(tmp_path):
    path = write_adc2021(tmp_path / "x.h5", adc2021_events(), name="Particle")
    check_error(path, "no dataset 'Particles'", "Particle")


def test_wrong_shape(tmp_path):
    path = write_adc2021(tmp_path / "x.h5", np.zeros((4, 18, 4)))
    check_error(path, "shape (4, 18, 4)", "expected (N, 19, 4)", "key 'Particles'")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite(tmp_path, bad):
    p = adc2021_events()
    p[3, 9, 1] = bad
    path = write_adc2021(tmp_path / "x.h5", p)
    check_error(path, "NaN or infinite values in 1 events", "event 3")
    check_error(path, "NaN or infinite", clip=True)  # never clipped


def test_class_mismatch(tmp_path):
    p = adc2021_events()
    p[1, 5, 3] = 2  # an e/gamma code in a muon slot
    check_error(write_adc2021(tmp_path / "x.h5", p), "class codes", "event 1")


@pytest.mark.parametrize(
    "slot, column, value, what",
    [(9, 0, -3.0, "negative pT"), (10, 1, 5.5, "|eta| > 5"), (1, 2, 3.5, "phi outside [-pi, pi]")],
)
def test_out_of_range_rejected_or_clipped(tmp_path, slot, column, value, what):
    p = adc2021_events()
    p[2, slot, column] = value
    p[4, slot, column] = value
    path = write_adc2021(tmp_path / "x.h5", p)
    check_error(path, what, "in 2 events", "event 2", "--clip")
    s = read_sample(path, clip=True)
    assert s.clipped == {what: 2}
    fixed = s.particles[2, slot, column]
    assert {0: fixed == 0.0, 1: fixed == 5.0, 2: np.isclose(fixed, np.pi)}[column]
    untouched = np.delete(s.particles.reshape(-1), [np.ravel_multi_index((i, slot, column), p.shape) for i in (2, 4)])
    assert np.array_equal(untouched, np.delete(p.astype(np.float32).reshape(-1),
                                               [np.ravel_multi_index((i, slot, column), p.shape) for i in (2, 4)]))


def test_eta_limit_is_configurable(tmp_path):
    path = write_adc2021(tmp_path / "x.h5", adc2021_events())
    check_error(path, "|eta| > 1", eta_max=1.0)


def test_not_hdf5_and_missing(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    check_error(junk, "not a readable HDF5 file")
    check_error(tmp_path / "missing.h5", "no such file")


def test_several_samples_need_a_choice(tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        for name in ("bkg", "sig"):
            f.create_group(name).create_dataset("Particles", data=adc2021_events())
    assert list_samples(path) == ["bkg", "sig"]
    check_error(path, "several samples (bkg, sig)")
    check_error(path, "no such sample", "bkg, sig", sample="other")
    assert read_sample(path, "sig").name == "sig"


def test_export_to_published_layout_round_trips(tmp_path):
    from l1ml.data.events import export_sample

    src = tmp_path / "two.h5"
    with h5py.File(src, "w") as f:
        for name, scale in (("bkg", 1.0), ("sig", 2.0)):
            g = f.create_group(name)
            g.create_dataset("Particles", data=adc2021_events() * [scale, 1, 1, 1])
            g.create_dataset("ProcessID", data=np.zeros(5, dtype=np.int8))
            g.create_dataset("Process_Names", data=np.array([b"A_4l"]))
    out = tmp_path / "sig_only.h5"
    export_sample(src, "sig", out)
    with h5py.File(out) as f:
        assert f["Particles"].shape == (5, 19, 4)
        assert [n.decode() for n in f["Particles_Names"][()]] == ["Pt", "Eta", "Phi", "Class"]
        assert f.attrs["sample"] == "sig"
    s = read_sample(out)
    assert s.name == "sig_only" and np.array_equal(s.particles, read_sample(src, "sig").particles)
    assert s.process_names == ["A_4l"]
    with pytest.raises(L1mlError, match="overwrite its own input"):
        export_sample(src, "sig", src)
