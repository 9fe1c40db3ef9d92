"""The `firmware/` folder of a firmware release: what the delivery takes from the verified run and the synthesis job.

    firmware/hls/         the verified HLS project (sources, build Tcl; no build output), tb_data/ with the test vectors
    firmware/vhdl/        BDTs: conifer's VHDL, SimulationInput.txt / SimulationExpected.txt with the test vectors
    firmware/rtl/         networks converted with --rtl: da4ml's Verilog and VHDL (no Verilator build output), its
                          own tb/ vectors (integer codes at the RTL's ports), the records rtl.json, convert.json
    firmware/synthesis/   the job's result.json, job.json and the reports it parsed
    firmware/ip/          the IP the job's export step wrote

Each project says which folder it goes to and what of it a release carries (`FirmwareProject.copy_release`). An
RTL-only delivery (no HLS synthesis) has firmware/rtl/ alone: the RTL is its firmware, not synthesised.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from l1ml.deliver.gate import Gate, Synthesis
from l1ml.firmware.project import GHDL, VERILATOR, FirmwareProject


def write_firmware(folder: Path, gate: Gate, vectors) -> dict:
    """The projects the delivery releases (with the test vectors where its testbench reads them: for C/RTL
    co-simulation, or the VHDL simulation), the synthesis reports and the exported IP; an RTL-only delivery has no
    synthesis: its firmware is the RTL alone."""
    for project in gate.released:
        dest = folder / project.release_folder
        project.copy_release(dest)
        _write_testbench_vectors(project, dest, vectors)
    if gate.synthesis is None:
        return {"job": None, "ip": []}
    return _write_synthesis(folder, gate.synthesis)


def _write_synthesis(folder: Path, syn: Synthesis) -> dict:
    """The job's result, spec and reports in synthesis/, its exported IP in ip/."""
    reports = folder / "synthesis"
    reports.mkdir()
    syn.result.write(reports / "result.json")
    syn.spec.write(reports / "job.json")
    for rel in syn.result.reports.found:
        src = syn.job_dir / rel
        if src.is_file():
            shutil.copyfile(src, reports / src.name)
    delivered = []
    for ip in _exported_ip(syn.job_dir / "project"):
        (folder / "ip").mkdir(exist_ok=True)
        if ip.is_dir():  # an unzipped IP folder (component.xml): zipped here, reproducibly
            target = folder / "ip" / f"{ip.parent.parent.parent.name}_ip.zip"
            _zip_folder(ip, target)
        else:
            target = folder / "ip" / ip.name
            shutil.copyfile(ip, target)
        delivered.append(f"firmware/ip/{target.name}")
    return {"job": syn.job_id, "ip": delivered}


def _write_testbench_vectors(project: FirmwareProject, dest: Path, vectors) -> None:
    if project.simulated_by == VERILATOR:  # the RTL carries its own vectors (tb/, in its ports' widths)
        return
    if project.simulated_by == GHDL:  # the VHDL testbench GHDL runs: integer codes in the project's input type
        vectors.write_vhdl_testbench_data(dest, project.input_type)
    else:  # the HLS testbenches (C/RTL co-simulation) read tb_data/
        vectors.write_testbench_data(dest / "tb_data")


def _exported_ip(project: Path) -> list[Path]:
    """What an `export` step left in the job's project: Vivado HLS writes `<solution>/impl/ip/<vlnv>.zip`, Vitis HLS
    `<solution>/impl/export.zip` beside the unzipped `impl/ip/`; an `impl/ip/` with only component.xml is taken as is."""
    zips = sorted(project.glob("**/impl/ip/*.zip")) + sorted(project.glob("**/impl/export.zip"))
    if zips:
        return zips
    return sorted(p.parent for p in project.glob("**/impl/ip/component.xml"))


def _zip_folder(folder: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(folder)), date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                z.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
