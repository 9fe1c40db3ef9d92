"""Test vectors for firmware simulation: input and expected output bit patterns of the verified firmware.

`test_vectors/` of a delivery:
    inputs.hex       one event per line: each input's two's-complement bit pattern in hex, `ceil(W/4)` digits
    outputs.hex      the same for the firmware's outputs (the score), as the C-simulation computed them
    inputs.npy       (events x inputs) int64 integer codes (value = code * 2**-F of the input type)
    outputs.npy      (events x outputs) int64 integer codes of the output type
    raw_inputs.txt   the test events' features before scaling (float32, decimal), one event per line: they are the
                     first rows of inputs.hex, so the emulator's own scaling can be checked too
    vectors.json     types, widths, and which rows are which (test events by sample, the adversarial blocks of verify)

>>> from l1ml.quantize.fixedpoint import parse_fixed
>>> to_hex_lines(parse_fixed("ap_fixed<6,3>").to_codes([[-0.125, 3.875]]), parse_fixed("ap_fixed<6,3>"))
['3f 1f']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ml.documents import VectorsInfo, read
from l1ml.errors import L1mlError
from l1ml.quantize.fixedpoint import FixedType, parse_fixed
from l1ml.verify.bitexact import Sample
from l1ml.verify.run import VerifyOptions, build_sample

MAX_BLOCK = 5000  # events per adversarial block in the vectors (the threshold probes of large BDTs run to 30 000)


@dataclass
class Vectors:
    inputs: np.ndarray  # (events x inputs) int64 codes of input_type
    outputs: np.ndarray  # (events x outputs) int64 codes of output_type
    input_type: FixedType
    output_type: FixedType
    blocks: list[tuple[str, int, int]]  # (category, first row, end row)
    raw: np.ndarray  # (test events x inputs) float32 features before scaling: rows 0..len(raw) of inputs

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "inputs.hex").write_text("\n".join(to_hex_lines(self.inputs, self.input_type)) + "\n")
        (folder / "outputs.hex").write_text("\n".join(to_hex_lines(self.outputs, self.output_type)) + "\n")
        np.save(folder / "inputs.npy", self.inputs)
        np.save(folder / "outputs.npy", self.outputs)
        # numpy's repr of a float32 is the shortest decimal that reads back (strtof) as the same float32
        (folder / "raw_inputs.txt").write_text("".join(" ".join(repr(v) for v in row) + "\n" for row in self.raw.astype(np.float32)))
        self.description().write(folder / "vectors.json")

    def write_testbench_data(self, folder: Path) -> None:
        """The vectors as the hls4ml and conifer testbenches read them (`tb_data/`): one event per line, the values in
        decimal (exact: the shortest decimal of each double, and every value is on its type's grid)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, codes, t in (("tb_input_features.dat", self.inputs, self.input_type),
                               ("tb_output_predictions.dat", self.outputs, self.output_type)):
            values = np.ldexp(codes.astype(np.float64), -t.fractional)
            (folder / name).write_text("".join(" ".join(repr(v) for v in row) + "\n" for row in values.tolist()))

    def write_vhdl_testbench_data(self, folder: Path, vhdl_type: FixedType) -> None:
        """The vectors as conifer's VHDL testbench reads them (`SimulationInput.txt`: per event, each input's integer
        code in the VHDL's one type) and the scores it must write (`SimulationExpected.txt`, the same format as its
        `SimulationOutput.txt`)."""
        for name, codes, t in (("SimulationInput.txt", self.inputs, self.input_type),
                               ("SimulationExpected.txt", self.outputs, self.output_type)):
            shift = vhdl_type.fractional - t.fractional
            if shift < 0:
                raise L1mlError(f"the VHDL type {vhdl_type} is coarser than {t}", path=folder)
            (folder / name).write_text("".join(" ".join(str(v) for v in row) + "\n" for row in (codes << shift).tolist()))

    def description(self) -> VectorsInfo:
        def port(codes: np.ndarray, t: FixedType) -> dict:
            return {"count": codes.shape[1], "type": str(t), "width": t.width, "fractional_bits": t.fractional}

        return VectorsInfo(
            events=len(self.inputs), inputs=port(self.inputs, self.input_type), outputs=port(self.outputs, self.output_type),
            hex="two's-complement bit patterns, ceil(width/4) hex digits, one event per line, values separated by spaces",
            npy="int64 integer codes: value = code * 2**-fractional_bits",
            raw_inputs={"events": len(self.raw), "rows": [0, len(self.raw)],
                        "note": "features before scaling; the emulator's prepare_input(float*) scales them itself"},
            blocks=[{"category": name, "rows": (a, b)} for name, a, b in self.blocks],
        )


def to_hex_lines(codes: np.ndarray, t: FixedType) -> list[str]:
    digits = (t.width + 3) // 4
    bits = np.asarray(codes, dtype=np.int64) & ((1 << t.width) - 1)
    return [" ".join(f"{int(v):0{digits}x}" for v in row) for row in bits]


def read_hex(path: Path, t: FixedType) -> np.ndarray:
    """The integer codes of a hex vector file (the inverse of `to_hex_lines`)."""
    rows = [[int(v, 16) for v in line.split()] for line in Path(path).read_text().splitlines() if line.strip()]
    bits = np.array(rows, dtype=np.int64)
    if t.signed:
        bits = np.where(bits >= 1 << (t.width - 1), bits - (1 << t.width), bits)
    return bits


def make_vectors(subject, library, *, test_events: int) -> Vectors:
    """Vectors of a verified training run: its first `test_events` test events of each sample, then verify's
    adversarial blocks, with the outputs of the C-simulation `library`; they must also equal the bit-exact model."""

    run = subject.run
    sample = build_sample(subject, VerifyOptions(events=test_events, min_events=0))
    parts = {name: sample.x[a:b] if name.startswith("test:") else sample.x[a:b][:MAX_BLOCK] for name, a, b in sample.blocks}
    sample = Sample.from_parts(parts)
    t = subject.input_type
    x = t.quantize(sample.x)  # what the firmware's input conversion makes of off-grid inputs (the rounding ties)
    firmware = library.run(x)
    model = subject.model_output(x)
    if not np.array_equal(firmware, np.asarray(model, dtype=np.float64).reshape(firmware.shape)):
        raise L1mlError(f"the C-simulation and {subject.model_name} differ on the test vectors; run `l1ml verify` "
                        "again: the run has changed since it passed", path=subject.target)
    out_type = run.score_type
    codes = out_type.to_codes(firmware)
    if not np.array_equal(np.ldexp(codes.astype(np.float64), -out_type.fractional), firmware):
        raise L1mlError(f"the firmware's outputs are not values of the score type {out_type}", path=subject.firmware_dir)
    raw = np.vstack([events[:test_events] for events in run.test_events.values()]).astype(np.float32)
    if not np.array_equal(run.raw_to_firmware(raw.astype(np.float64)), x[: len(raw)]):
        raise L1mlError("the scaled test events are not the first rows of the vectors", path=subject.target)
    return Vectors(t.to_codes(x), codes, t, out_type, sample.blocks, raw)


def load_vectors(folder: Path) -> tuple[VectorsInfo, np.ndarray, np.ndarray]:
    """vectors.json, input codes and output codes of a `test_vectors/` folder, from the hex files."""
    info = read(Path(folder) / "vectors.json", VectorsInfo)
    inputs = read_hex(folder / "inputs.hex", parse_fixed(info.inputs.type))
    outputs = read_hex(folder / "outputs.hex", parse_fixed(info.outputs.type))
    return info, inputs, outputs
