"""Generation for users: condition parsing, the generate API and CLI, files people can open."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from tests.training_helpers import train_tiny

from midtecg.cli import main
from midtecg.data.cache import prepare
from midtecg.data.conditions import ConditionEncoder
from midtecg.data.labels import SCP_CODES
from midtecg.generate import check_request, conditions_from_csv, conditions_from_request, generate, paired_conditions
from midtecg.sample import load_generator, sample

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "ptbxl"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return prepare(FIXTURE, tmp_path_factory.mktemp("cache") / "c", progress=False)


@pytest.fixture(scope="module")
def model_dir(cache, tmp_path_factory) -> Path:
    """A tiny numeric-demographics MIDT model with guidance, trained for a few steps (I/O tests only)."""
    overrides = ("conditions.mode='numeric'", "conditions.dropout=0.2", "objective.kind='midt'")
    return train_tiny(cache, tmp_path_factory.mktemp("run"), *overrides, steps=4)


def test_request_table_has_labels_and_demographics():
    table = conditions_from_request(n=3, labels="NORM, sinus rhythm", age=65, sex="female", heart_rate=72)
    assert len(table) == 3
    assert table.loc[0, "labels"] == "NORM,SR"
    assert table[["NORM", "SR"]].to_numpy().all() and table[list(SCP_CODES)].to_numpy().sum() == 6
    assert (table["sex"] == 1).all() and table["height"].isna().all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"labels": "NROM"}, "NORM"),  # suggests the close match
        ({"age": -3}, "age"),
        ({"age": 150}, "age"),
        ({"height": 0}, "height"),
        ({"heart_rate": 400}, "heart_rate"),
        ({"sex": "yes"}, "sex"),
        ({"n": 0}, "at least 1"),
    ],
)
def test_bad_requests_fail_with_clear_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conditions_from_request(**kwargs)


def test_conditions_csv(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('name,labels,age,sex\na,NORM,50,male\nb,"IMI,SR",,female\n')
    table = conditions_from_csv(path)
    assert list(table["name"]) == ["a", "b"] and table.loc[1, "labels"] == "IMI,SR"
    assert np.isnan(table.loc[1, "age"]) and table.loc[1, "sex"] == 1
    path.write_text("labels,age\nNORM,500\n")
    with pytest.raises(ValueError, match="line 2"):
        conditions_from_csv(path)
    path.write_text("labels,colour\nNORM,red\n")
    with pytest.raises(ValueError, match="colour"):
        conditions_from_csv(path)


def test_numeric_encoder_standardises_and_masks_missing():
    records = pd.DataFrame(
        {
            "age": [40.0, 60.0, np.nan],
            "sex": [0, 1, 1],
            "height": [170.0, np.nan, 180.0],
            "weight": [70.0, 80.0, np.nan],
            "heart_rate": [60.0, 80.0, 100.0],
        }
    )
    for code in SCP_CODES:
        records[code] = 0
    encoder = ConditionEncoder.fit(records, "numeric")
    encoded = encoder.encode(records)["demographics"]
    values, mask = encoded[:, :6], encoded[:, 6:]
    assert mask[2, 0] == 0 and values[2, 0] == 0  # missing age: masked, not a fake value
    assert np.isclose(values[0, 0], -1.0) and np.isclose(values[1, 0], 1.0)  # z-scored with train stats
    assert mask[1, 4] == 0  # BMI needs height
    restored = ConditionEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert restored.encode(records)["demographics"].tolist() == encoded.tolist()


def test_paper_mode_groups():
    def groups(mode):
        return [(g.name, g.size, g.embed_dim) for g in ConditionEncoder(mode=mode).groups]

    assert groups("age") == [("labels", 71, 96), ("age", 6, 32)]
    assert groups("sex") == [("labels", 71, 96), ("sex", 2, 32)]
    assert groups("labels") == [("labels", 71, 128)]


def test_sampling_is_seeded_and_shaped(model_dir):
    generator = load_generator(model_dir, device="cpu")
    request = conditions_from_request(n=2, labels="NORM", age=50, sex="male")
    a = sample(generator, request, sampler="ddim", steps=5, seed=3, progress=False)
    b = sample(generator, request, sampler="ddim", steps=5, seed=3, progress=False)
    c = sample(generator, request, sampler="ddim", steps=5, seed=4, progress=False)
    assert a.signals.shape == (2, 12, 1000) and a.signals.dtype == np.float32
    assert np.array_equal(a.signals, b.signals) and not np.array_equal(a.signals, c.signals)
    # Limb leads follow exactly from I and aVF.
    lead_i, lead_ii, avf = a.signals[:, 0], a.signals[:, 1], a.signals[:, 5]
    assert np.allclose(lead_ii, avf + lead_i / 2, atol=1e-6)
    guided = sample(generator, request, sampler="dpm++2m", steps=4, guidance=2.0, seed=3, progress=False)
    assert np.isfinite(guided.signals).all()


def test_the_same_seed_gives_the_same_ecgs_whatever_the_batch_size(model_dir, tmp_path):
    """generate keys each ECG's noise by (seed, its row in the job): batch size 3 or 4 gives the same ECGs, and
    one row regenerated alone with its index (read back from the WFDB header) is the same ECG."""
    from midtecg.io import read_wfdb_comments

    request = pd.concat(
        [
            conditions_from_request(n=2, labels="NORM", age=40),
            conditions_from_request(n=2, labels="IMI", age=70, sex="female"),
        ],
        ignore_index=True,
    )
    options = dict(model=model_dir, sampler="ddpm", seed=11, progress=False)
    whole = generate(request, out_dir=tmp_path, formats=("wfdb",), batch_size=4, **options)
    np.testing.assert_allclose(
        generate(request, batch_size=3, **options).ecgs.signals, whole.ecgs.signals, rtol=0, atol=1e-5
    )
    header = read_wfdb_comments(whole.files["wfdb"][2], typed=True)
    assert header["seed"] == 11 and header["index"] == 2
    alone = generate(request.iloc[[2]], indices=[header["index"]], **options).ecgs.signals
    np.testing.assert_allclose(alone[0], whole.ecgs.signals[2], rtol=0, atol=1e-5)
    assert np.abs(alone[0] - whole.ecgs.signals[3]).max() > 0.1  # the same request at another index differs


def test_generate_writes_wfdb_plots_npz_csv(model_dir, tmp_path):
    request = conditions_from_request(n=2, labels="NORM", age=61, sex="female", heart_rate=70)
    result = generate(
        request,
        model=model_dir,
        out_dir=tmp_path,
        formats=("wfdb", "npz", "csv", "png", "pdf"),
        sampler="ddim",
        steps=3,
        seed=1,
        progress=False,
    )
    signal, fields = wfdb.rdsamp(str(result.files["wfdb"][0]))
    assert signal.shape == (1000, 12) and fields["fs"] == 100 and fields["units"] == ["mV"] * 12
    assert np.allclose(signal.T, result.ecgs.signals[0], atol=0.0006)
    assert any(c.startswith("labels: NORM") for c in fields["comments"])
    assert any(c.startswith("sex: female") for c in fields["comments"])
    for kind in ("png", "pdf"):
        assert len(result.files[kind]) == 2 and all(p.stat().st_size > 10_000 for p in result.files[kind])
    assert result.files["png"][0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.files["pdf"][0].read_bytes()[:5] == b"%PDF-"
    assert np.load(result.files["npz"][0])["signals"].shape == (2, 12, 1000)
    index = pd.read_csv(tmp_path / "conditions.csv")
    assert list(index["name"]) == ["synth_00001", "synth_00002"] and (index["age"] == 61).all()


def test_generate_500_hz(model_dir, tmp_path):
    result = generate(
        conditions_from_request(n=1, labels="NORM"),
        model=model_dir,
        out_dir=tmp_path,
        fs=500,
        formats=("wfdb",),
        sampler="ddim",
        steps=2,
        progress=False,
    )
    signal, fields = wfdb.rdsamp(str(result.files["wfdb"][0]))
    assert signal.shape == (5000, 12) and fields["fs"] == 500


def test_demographics_the_model_cannot_use_are_refused(model_dir, cache, tmp_path):
    generator = load_generator(model_dir, device="cpu")
    generator.encoder = ConditionEncoder(mode="labels")
    with pytest.raises(ValueError, match="cannot use age"):
        check_request(generator, conditions_from_request(n=1, labels="NORM", age=40))


@pytest.fixture(scope="module")
def labels_model_dir(cache, tmp_path_factory) -> Path:
    """A tiny model conditioned on the labels alone, trained for two steps."""
    return train_tiny(cache, tmp_path_factory.mktemp("run"))


def test_paired_generation_drops_the_demographics_a_labels_model_cannot_use(labels_model_dir, cache, tmp_path):
    conditions = paired_conditions(cache, split="test", limit=3)
    assert conditions["age"].notna().any()
    with pytest.raises(ValueError, match="cannot use"):
        generate(conditions, labels_model_dir, sampler="ddim", steps=2, progress=False)
    result = generate(conditions, labels_model_dir, sampler="ddim", steps=2, progress=False, strict=False)
    assert result.ecgs.signals.shape == (3, 12, 1000)
    out = tmp_path / "paired"
    assert (
        main(
            [
                "generate",
                "--paired",
                str(cache),
                "-n",
                "2",
                "--model",
                str(labels_model_dir),
                "--out",
                str(out),
                "--format",
                "npz",
                "--sampler",
                "ddim",
                "--steps",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    assert (out / "ecgs.npz").is_file()


def test_paired_conditions_copy_real_records(cache):
    table = paired_conditions(cache, split="test")
    assert len(table) > 0 and "ecg_id" in table.columns
    assert table["labels"].str.len().gt(0).all()


def test_cli_generate_and_errors(model_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "generate",
            "-n",
            "2",
            "--labels",
            "NORM",
            "--age",
            "65",
            "--sex",
            "female",
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--sampler",
            "ddim",
            "--steps",
            "2",
            "--quiet",
        ]
    )
    assert code == 0
    assert len(list((out / "wfdb").glob("*.hea"))) == 2 and len(list((out / "plots").glob("*.png"))) == 2
    assert main(["generate", "--labels", "NOTACODE", "--model", str(model_dir), "--out", str(tmp_path / "new")]) == 2
    assert "NOTACODE" in capsys.readouterr().err
    assert main(["generate", "--model", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert main(["generate", "--conditions", "x.csv", "--age", "3", "--out", str(out)]) == 2


# --- bad input: names, folders, counts, rates, devices (the built-in model, one step of its sampler: fast) ---

FAST = {"steps": 1, "progress": False, "device": "cpu"}


@pytest.mark.parametrize(
    "name, message",
    [
        ("/elsewhere/x", "line 3: record name '/elsewhere/x'"),
        ("../../x", "line 3: record name '../../x'"),
        ("a/b", "line 3: record name 'a/b'"),
        ("x" * 300, "line 3: record name .*longer than 100"),
        ("", "line 3: record name is empty"),
        ("first", "line 3: record name 'first' repeats 'first' of .*c.csv line 2"),
        ("FIRST", "line 3: record name 'FIRST' repeats 'first' \\(ignoring case\\)"),
    ],
)
def test_csv_names_are_refused_naming_the_line(tmp_path, name, message):
    path = tmp_path / "c.csv"
    pd.DataFrame({"name": ["first", name], "labels": ["NORM", "NORM"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        conditions_from_csv(path)


def test_csv_values_name_the_file_and_line(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("labels,age,height,sex\nNORM,NA,35,woman\nNORM,abc,,\n")
    with pytest.raises(ValueError, match="c.csv line 3: age 'abc' is not a number"):
        conditions_from_csv(path)
    path.write_text("labels,age,height,sex\nNORM,NA,35,woman\n")
    table = conditions_from_csv(path)  # NA is missing; 35 cm is plausible (training keeps it too)
    assert np.isnan(table.loc[0, "age"]) and table.loc[0, "height"] == 35 and table.loc[0, "sex"] == 1
    path.write_bytes(b"labels,age\n\xff\xfe,1\n")
    with pytest.raises(ValueError, match="c.csv: not a readable CSV"):
        conditions_from_csv(path)


@pytest.mark.parametrize("n", [0, -1, True, 2.5])
def test_counts_must_be_whole_and_positive(cache, n):
    with pytest.raises(ValueError, match="at least 1"):
        conditions_from_request(n=n)
    with pytest.raises(ValueError, match="limit on paired records.*at least 1"):
        paired_conditions(cache, limit=n)


def test_bad_requests_are_refused_before_the_model_loads(tmp_path):
    request = conditions_from_request(n=2, labels="NORM")
    for kwargs, message in (
        ({"fs": 0}, "fs must be a whole positive"),
        ({"fs": -500}, "fs must"),
        ({"batch_size": 0}, "batch_size"),
        ({"formats": ("jpg",)}, "jpg"),
        ({"guidance": float("nan")}, "guidance"),
    ):
        with pytest.raises(ValueError, match=message):
            generate(request, model=tmp_path / "no-model", out_dir=tmp_path / "o", **kwargs)
    escaping = request.assign(name=["../../x", "b"])
    with pytest.raises(ValueError, match="record name '../../x'"):
        generate(escaping, model=tmp_path / "no-model", out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="at least 1"):
        generate(request.iloc[:0], model=tmp_path / "no-model")
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_one_clear_error():
    with pytest.raises(ValueError, match="device 'cuda': CUDA is not available"):
        generate(conditions_from_request(n=1), device="cuda")


def test_a_reused_output_folder_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "o"
    first = generate(conditions_from_request(n=3, labels="NORM"), out_dir=out, formats=("wfdb", "csv"), **FAST)
    assert [p.name for p in first.files["wfdb"]] == ["synth_00001", "synth_00002", "synth_00003"]
    with pytest.raises(FileExistsError, match="already holds earlier results \\(wfdb/, csv/, conditions.csv\\)"):
        generate(conditions_from_request(n=1, labels="NORM"), out_dir=out, formats=("npz",), **FAST)
    second = generate(
        conditions_from_request(n=1, labels="IMI"), out_dir=out, formats=("wfdb", "npz"), overwrite=True, **FAST
    )
    assert sorted(p.name for p in out.iterdir()) == ["conditions.csv", "ecgs.npz", "wfdb"]  # no stale csv/, no staging
    assert sorted(p.name for p in (out / "wfdb").iterdir()) == ["synth_00001.dat", "synth_00001.hea"]
    assert pd.read_csv(out / "conditions.csv")["labels"].tolist() == ["IMI"]
    assert second.files["wfdb"] == [out / "wfdb" / "synth_00001"] and second.files["npz"][0].is_file()


def test_large_jobs_print_an_estimate_first(monkeypatch, capsys):
    import midtecg.generate as generation

    monkeypatch.setattr(generation, "LARGE_JOB_ECG_STEPS", 3)  # network evaluations x ECGs
    generate(conditions_from_request(n=3, labels="NORM"), estimate=True, **FAST)
    line = capsys.readouterr().err.strip().splitlines()[0]
    assert re.match(
        r"generating 3 ECGs: [\w+]+, 1 steps( \(2 network evaluations\))? x 1 batch\(es\) of up to 32 on cpu; "
        r"about \d+ s "
        r"\(one step of a full batch measured at \d+\.\d\d s\)",
        line,
    ), line
    generate(conditions_from_request(n=1, labels="NORM"), estimate=True, **FAST)  # 1 ECG, 1-2 evaluations: below
    assert "generating" not in capsys.readouterr().err


def _option_model(cache, folder: Path, *sets: str) -> Path:
    return train_tiny(cache, folder, "train.check_samples=0", *sets, steps=3)


@pytest.fixture(scope="module")
def scaled_v_model(cache, tmp_path_factory) -> Path:
    return _option_model(
        cache,
        tmp_path_factory.mktemp("scaled"),
        "data.scaling='std'",
        "diffusion.prediction='v'",
        "diffusion.zero_terminal_snr=true",
    )


@pytest.fixture(scope="module")
def flow_model(cache, tmp_path_factory) -> Path:
    return _option_model(cache, tmp_path_factory.mktemp("flow"), "diffusion.prediction='flow'")


def test_a_scaled_model_is_sampled_back_in_millivolts(scaled_v_model):
    """sample() multiplies the network's units by the stored per-lead scale (for every sampler)."""
    from midtecg.data.leads import to_model_leads

    generator = load_generator(scaled_v_model, device="cpu")
    assert generator.parameterization.prediction == "v" and generator.schedule.terminal_snr_is_zero
    scale = generator.lead_scale
    assert scale.shape == (8,) and np.all((scale > 0.05) & (scale < 1.0))
    request = conditions_from_request(n=2, labels="NORM")
    for sampler, steps in (("ddpm", None), ("ddim", 4), ("dpm++2m", 4)):
        mv = sample(generator, request, sampler=sampler, steps=steps, seed=2, progress=False).signals
        generator.lead_scale = None
        units = sample(generator, request, sampler=sampler, steps=steps, seed=2, progress=False).signals
        generator.lead_scale = scale
        assert np.isfinite(mv).all(), sampler
        np.testing.assert_allclose(to_model_leads(mv), to_model_leads(units) * scale[:, None], rtol=1e-5, atol=1e-6)


def test_a_flow_model_samples_with_euler_and_heun(flow_model, tmp_path):
    from midtecg.cli.arguments import SAMPLERS
    from midtecg.diffusion import FLOW_SAMPLER_NAMES, SAMPLER_NAMES

    assert SAMPLERS == SAMPLER_NAMES + FLOW_SAMPLER_NAMES
    generator = load_generator(flow_model, device="cpu")
    assert generator.parameterization.is_flow and generator.parameterization.time_scale == 199.0
    request = conditions_from_request(n=2, labels="NORM")
    default = sample(generator, request, seed=1, progress=False).signals  # heun, 20 steps
    assert np.array_equal(default, sample(generator, request, sampler="heun", steps=20, seed=1, progress=False).signals)
    assert not np.array_equal(
        default, sample(generator, request, sampler="euler", steps=20, seed=1, progress=False).signals
    )
    with pytest.raises(ValueError, match="rectified-flow"):
        sample(generator, request, sampler="ddpm", progress=False)
    out = tmp_path / "cli"
    assert (
        main(
            [
                "generate",
                "-n",
                "2",
                "--labels",
                "NORM",
                "--model",
                str(flow_model),
                "--out",
                str(out),
                "--sampler",
                "euler",
                "--steps",
                "3",
                "--format",
                "npz",
                "--quiet",
            ]
        )
        == 0
    )
    assert np.isfinite(np.load(out / "ecgs.npz")["signals"]).all()


def test_the_checkpoint_names_its_default_sampler(model_dir, tmp_path):
    """config.json "sampling" sets the default sampler; without it a diffusion model samples with ddpm."""
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    assert "sampling" not in config and "parameterization" not in config  # written as before the options
    request = conditions_from_request(n=1, labels="NORM")
    generator = load_generator(copy, device="cpu")
    plain = sample(generator, request, seed=5, progress=False).signals
    assert np.array_equal(plain, sample(generator, request, sampler="ddpm", seed=5, progress=False).signals)
    config["sampling"] = {"sampler": "ddim", "steps": 3}
    (copy / "config.json").write_text(json.dumps(config))
    generator = load_generator(copy, device="cpu")
    named = sample(generator, request, seed=5, progress=False).signals
    assert np.array_equal(named, sample(generator, request, sampler="ddim", steps=3, seed=5, progress=False).signals)
    config["sampling"] = {"sampler": "ddim", "eta": 1}
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="sampling"):
        load_generator(copy, device="cpu")
