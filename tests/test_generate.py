"""Event generation: layout, determinism, caching, physics sanity and rejected configs."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from l1ml.data.events import list_samples, particles_digest, read_file_attrs, read_sample
from l1ml.data.generate import events_per_process, generate
from l1ml.data.layout import BLOCKS, CLASS, ETA, PT, SLOT_CLASS, block, multiplicity
from l1ml.errors import L1mlError

from helpers import write_yaml

TINY = """
name: tiny
seed: {seed}
chunk_events: 15
samples:
  bkg:
    events: 40
    processes: [{{process: W_lnu, fraction: 0.5}}, {{process: Z_ll, fraction: 0.5}}]
  sig:
    events: 20
    processes: [{{process: A_4l}}]
"""


def tiny(tmp_path, seed=11, name="tiny.yaml"):
    return write_yaml(tmp_path / name, TINY.format(seed=seed))


def digests(path):
    return {s: particles_digest(read_sample(path, s).particles) for s in list_samples(path)}


def test_same_config_and_seed_give_identical_events_whatever_the_jobs(tmp_path):
    cfg = tiny(tmp_path)
    one = generate(cfg, out=tmp_path / "a.h5", jobs=1)
    two = generate(cfg, out=tmp_path / "b.h5", jobs=2)
    assert not one.reused and not two.reused
    assert digests(one.path) == digests(two.path)
    other = generate(tiny(tmp_path, seed=12, name="other.yaml"), out=tmp_path / "c.h5", jobs=2)
    assert all(a != b for a, b in zip(digests(one.path).values(), digests(other.path).values()))


def test_unchanged_config_reuses_file(tmp_path):
    cfg = tiny(tmp_path)
    first = generate(cfg, out=tmp_path / "a.h5", jobs=2)
    mtime = first.path.stat().st_mtime_ns
    again = generate(cfg, out=tmp_path / "a.h5", jobs=2)
    assert again.reused and again.path.stat().st_mtime_ns == mtime
    assert first.manifest.exists()


def test_foreign_file_not_overwritten(tmp_path):
    out = tmp_path / "mine.h5"
    with h5py.File(out, "w") as f:
        f["x"] = [1]
    with pytest.raises(L1mlError, match="was not written by 'l1ml data generate'"):
        generate(tiny(tmp_path), out=out)


def test_layout(small_events):
    samples = list_samples(small_events)
    assert samples == ["background", "Ato4l", "LQ_btau", "h0_tautau", "hpm_taunu"]
    for name in samples:
        p = read_sample(small_events, name).particles
        assert p.shape == (400 if name == "background" else 100, 19, 4) and p.dtype == np.float32
        present = p[:, :, PT] > 0
        # class column: the slot's class where an object is, 0 where the slot is empty
        assert np.array_equal(p[:, :, CLASS], np.where(present, SLOT_CLASS, 0))
        assert np.all(p[~present] == 0), "empty slots must be zero-padded"
        assert np.all(present[:, 0]) and np.all(p[:, 0, ETA] == 0), "MET is always there, with eta 0"
        for kind in BLOCKS:
            pt = block(p, kind)[:, :, PT]
            assert np.all(np.diff(pt, axis=1) <= 0), f"{kind} not pT-ordered"
            # padding only after the last object: no object follows an empty slot
            assert not np.any((pt[:, :-1] == 0) & (pt[:, 1:] > 0))


def test_generator_settings_are_stored(small_events):
    attrs = read_file_attrs(small_events)
    assert attrs["seed"] == 7 and attrs["sqrt_s_tev"] == 13.6 and len(attrs["config_hash"]) == 64
    assert attrs["config"]["samples"]["background"]["events"] == 400
    with h5py.File(small_events) as f:
        g = f["background"]
        assert [n.decode() for n in g["Particles_Names"][()]] == ["Pt", "Eta", "Phi", "Class"]
        assert g["Particles_Classes"].shape == (4,)
    info = read_sample(small_events, "background").attrs["processes"]
    assert [p["process"] for p in info] == ["W_lnu", "QCD", "Z_ll", "ttbar"]
    assert "Beams:eCM = 13600" in info[0]["pythia_settings"] and info[0]["sigma_gen_mb"] > 0


def by_process(path, sample, process):
    s = read_sample(path, sample)
    return s.particles[s.process_id == s.process_names.index(process)]


def leptons(p, pt_min=0.0):
    return (block(p, "egamma")[:, :, PT] > pt_min).sum(axis=1) + (block(p, "muon")[:, :, PT] > pt_min).sum(axis=1)


def test_physics_a_to_4l_has_leptons(small_events):
    p = read_sample(small_events, "Ato4l").particles
    assert np.mean(leptons(p) >= 2) > 0.6


def test_physics_w_has_lepton_and_met(small_events):
    w = by_process(small_events, "background", "W_lnu")
    qcd = by_process(small_events, "background", "QCD")
    assert np.mean(leptons(w, 10) >= 1) > 0.4  # e and mu, and tau -> e/mu, in the acceptance
    assert np.mean(leptons(qcd, 10) >= 1) < 0.15
    assert np.median(w[:, 0, PT]) > 20 and np.median(w[:, 0, PT]) > 2 * np.median(qcd[:, 0, PT])


def test_physics_jet_spectrum_falls(small_events):
    qcd = by_process(small_events, "background", "QCD")
    jet_pt = block(qcd, "jet")[:, :, PT]
    counts, _ = np.histogram(jet_pt[jet_pt > 0], bins=[15, 30, 60, 120])
    assert np.all(np.diff(counts) < 0) and counts[0] > 3 * counts[2], counts


def test_physics_ttbar_has_more_jets_than_w(small_events):
    tt = by_process(small_events, "background", "ttbar")
    w = by_process(small_events, "background", "W_lnu")
    assert multiplicity(tt, "jet").mean() > multiplicity(w, "jet").mean() + 2


def test_events_split_exactly():
    assert events_per_process(10000, [0.592, 0.338, 0.067, 0.003]) == [5920, 3380, 670, 30]
    assert sum(events_per_process(7, [1 / 3] * 3)) == 7


def test_unknown_pythia_setting_rejected(tmp_path):
    cfg = write_yaml(tmp_path / "bad.yaml", TINY.format(seed=1).replace(
        "{process: A_4l}", '{process: A_4l, pythia: ["HiggsBSM:gg2H2 = on", "Higgs:notASetting = on"]}'))
    with pytest.raises(L1mlError) as e:
        generate(cfg, out=tmp_path / "x.h5")
    assert "samples.sig.processes.0.pythia.1" in str(e.value) and "Higgs:notASetting" in str(e.value)
    assert not (tmp_path / "x.h5").exists()


def test_filter_that_keeps_nothing_fails_clearly(tmp_path):
    text = TINY.format(seed=1).replace("events: 20\n", "events: 2\n    lepton_filter_pt: 5000\n")
    cfg = write_yaml(tmp_path / "f.yaml", text + "max_tries_per_event: 3\n")
    with pytest.raises(L1mlError, match="lepton filter kept 0 of 6 events of process 'A_4l'"):
        generate(cfg, out=tmp_path / "x.h5", jobs=1)
    assert not (tmp_path / "x.h5").exists()


def test_lepton_filter_keeps_only_events_with_a_hard_lepton(tmp_path):
    cfg = write_yaml(tmp_path / "f.yaml", "name: f\nseed: 5\nsamples:\n  w:\n    events: 30\n    lepton_filter_pt: 23\n"
                                          "    processes: [{process: W_lnu}]\n")
    s = read_sample(generate(cfg, out=tmp_path / "f.h5", jobs=1).path)
    assert np.all(np.maximum(s.particles[:, 1, PT], s.particles[:, 5, PT]) >= 23)
    info = s.attrs["processes"][0]
    assert info["events"] == 30 and info["events_tried"] > 30 and 0 < info["filter_efficiency"] < 1


def test_pileup_adds_activity_to_the_same_hard_events(tmp_path):
    text = "name: p\nseed: 5\npileup: {{mean: {mu}}}\nsamples:\n  z:\n    events: 25\n    processes: [{{process: Z_ll}}]\n"
    jets = {}
    for mu in (0, 8):
        p = read_sample(generate(write_yaml(tmp_path / f"p{mu}.yaml", text.format(mu=mu)), out=tmp_path / f"p{mu}.h5",
                                 jobs=1).path).particles
        jets[mu] = block(p, "jet")[:, :, PT].sum(axis=1)
    assert jets[8].mean() > jets[0].mean() + 20
