"""Reports of the FPGA tools, parsed: HLS C-synthesis (`<top>_csynth.xml` or `.rpt`, Vivado HLS and Vitis HLS),
Vivado's `report_utilization` (after logic synthesis, `vivado_synth.rpt`, or later steps) and the design summary of
Vivado's `report_timing_summary` (`vivado_timing.rpt`: worst setup and hold slack, the clocks).

Resources are used/available pairs under one set of names: `lut`, `ff`, `dsp`, `bram_18k`, `uram`
for C-synthesis (Vivado HLS calls the DSPs `DSP48E`, Vitis HLS `DSP`), and `lut`, `ff`, `dsp`,
`bram_tile` (36 Kb tiles, with `ramb36`/`ramb18` counts), `uram` for Vivado. Latencies are in clock
cycles and in ns at the target clock.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from l1ml.errors import L1mlError

HLS_RESOURCES = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram_18k": "BRAM_18K", "uram": "URAM"}


@dataclass
class Usage:
    used: float
    available: float | None

    @property
    def fraction(self) -> float | None:
        return self.used / self.available if self.available else None


@dataclass
class CsynthResult:
    source: str
    tool: str  # "Vivado HLS" or "Vitis HLS"
    version: str
    part: str
    family: str
    top: str
    clock_target_ns: float
    clock_estimated_ns: float
    clock_uncertainty_ns: float
    latency_best: int
    latency_worst: int
    interval_min: int
    interval_max: int
    pipeline_type: str
    resources: dict[str, Usage] = field(default_factory=dict)

    @property
    def latency_best_ns(self) -> float:
        return self.latency_best * self.clock_target_ns

    @property
    def latency_worst_ns(self) -> float:
        return self.latency_worst * self.clock_target_ns

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(kind="csynth", latency_best_ns=self.latency_best_ns, latency_worst_ns=self.latency_worst_ns)
        return d


@dataclass
class UtilizationResult:
    source: str
    version: str
    device: str
    design_state: str
    resources: dict[str, Usage] = field(default_factory=dict)
    ramb36: float = 0
    ramb18: float = 0

    def to_dict(self) -> dict:
        return {"kind": "utilization", **asdict(self)}


def _tool_for(version: str, dsp_tag: str | None = None) -> str:
    """Vivado HLS reports DSPs as DSP48E and ended with 2020.1; Vitis HLS began with 2020.2."""
    if dsp_tag is not None:
        return "Vivado HLS" if dsp_tag == "DSP48E" else "Vitis HLS"
    year, _, minor = version.partition(".")
    return "Vitis HLS" if (int(year), int(minor.split(".")[0] or 0)) >= (2020, 2) else "Vivado HLS"


def parse_csynth_xml(path: Path) -> CsynthResult:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise L1mlError(f"not a readable C-synthesis XML report: {exc}", path=path) from None

    def text(xpath: str) -> str:
        node = root.find(xpath)
        if node is None or node.text is None:
            raise L1mlError("C-synthesis report lacks an entry", path=path, key=xpath)
        return node.text.strip()

    area = root.find("AreaEstimates")
    dsp_tag = "DSP48E" if area is not None and area.find("Resources/DSP48E") is not None else "DSP"
    resources = {}
    for name, tag in HLS_RESOURCES.items():
        tag = dsp_tag if name == "dsp" else tag
        used = root.find(f"AreaEstimates/Resources/{tag}")
        if used is None:
            continue
        avail = root.find(f"AreaEstimates/AvailableResources/{tag}")
        resources[name] = Usage(float(used.text), float(avail.text) if avail is not None else None)
    latency = "PerformanceEstimates/SummaryOfOverallLatency"
    version = text("ReportVersion/Version")
    return CsynthResult(
        source=str(path), tool=_tool_for(version, dsp_tag), version=version, part=text("UserAssignments/Part"),
        family=text("UserAssignments/ProductFamily"), top=text("UserAssignments/TopModelName"),
        clock_target_ns=float(text("UserAssignments/TargetClockPeriod")),
        clock_estimated_ns=float(text("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod")),
        clock_uncertainty_ns=float(text("UserAssignments/ClockUncertainty")),
        latency_best=_int(text(f"{latency}/Best-caseLatency")), latency_worst=_int(text(f"{latency}/Worst-caseLatency")),
        interval_min=_int(text(f"{latency}/Interval-min")), interval_max=_int(text(f"{latency}/Interval-max")),
        pipeline_type=text("PerformanceEstimates/PipelineType"), resources=resources)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1  # "undef": a latency HLS could not bound


_HEADER_RE = {
    "tool": re.compile(r"==\s+(Vivado HLS|Vitis HLS) Report for '(\w+)'"),
    "version": re.compile(r"\*\s*Version:\s*(\S+)"),
    "family": re.compile(r"\*\s*Product family:\s*(\S+)"),
    "part": re.compile(r"\*\s*Target device:\s*(\S+)"),
}
_CLOCK_RE = re.compile(r"\|\s*ap_clk\s*\|\s*([\d.]+)\s*ns\s*\|\s*([\d.]+)\s*ns\s*\|\s*([\d.]+)\s*ns\s*\|")
# the summary row of the latency table: min, max cycles | min, max absolute | interval min, max | pipeline type
_LATENCY_RE = re.compile(r"Latency \(cycles\).*?\n(?:.*\n){2}\s*\|\s*(\d+|\?)\|\s*(\d+|\?)\|[^|]*\|[^|]*\|"
                         r"\s*(\d+|\?)\|\s*(\d+|\?)\|\s*([\w ]+?)\s*\|")


def parse_csynth_rpt(path: Path) -> CsynthResult:
    """The text version of the C-synthesis report (for projects that kept only the .rpt)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise L1mlError(f"cannot read the report: {exc}", path=path) from None
    header = {k: r.search(text) for k, r in _HEADER_RE.items()}
    clock, latency = _CLOCK_RE.search(text), _LATENCY_RE.search(text)
    missing = [k for k, m in {**header, "clock": clock, "latency": latency}.items() if m is None]
    if missing:
        raise L1mlError(f"not a C-synthesis report: no {', '.join(missing)} found", path=path)
    names, total, available = _utilisation_rows(text, path)
    resources = {}
    for key, tag in HLS_RESOURCES.items():
        col = next((i for i, n in enumerate(names) if n == tag or (key == "dsp" and n.startswith("DSP"))), None)
        if col is not None:
            resources[key] = Usage(total[col], available[col])
    return CsynthResult(
        source=str(path), tool=header["tool"].group(1), version=header["version"].group(1), part=header["part"].group(1),
        family=header["family"].group(1), top=header["tool"].group(2), clock_target_ns=float(clock.group(1)),
        clock_estimated_ns=float(clock.group(2)), clock_uncertainty_ns=float(clock.group(3)),
        latency_best=_int(latency.group(1)), latency_worst=_int(latency.group(2)), interval_min=_int(latency.group(3)),
        interval_max=_int(latency.group(4)), pipeline_type=latency.group(5).strip(), resources=resources)


def _utilisation_rows(text: str, path: Path) -> tuple[list[str], list[float], list[float | None]]:
    """The 'Utilization Estimates' summary table: column names, the Total row and the Available row."""
    start = text.find("== Utilization Estimates")
    rows = {}
    names: list[str] = []
    for line in text[start:].splitlines()[:40]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        if cells[0] == "Name":
            names = cells[1:]
        elif cells[0] in ("Total", "Available") and cells[0] not in rows:
            rows[cells[0]] = cells[1:]
    if not names or "Total" not in rows:
        raise L1mlError("no utilisation summary in the report", path=path)

    def number(cell: str) -> float | None:
        return None if cell in ("", "-") else float(cell)

    return names, [number(c) or 0.0 for c in rows["Total"]], [number(c) for c in rows.get("Available", [])] or [None] * len(names)


# Vivado report_utilization ------------------------------------------------------------------------------------

_UTIL_ROWS = {"lut": ("CLB LUTs", "Slice LUTs"), "ff": ("CLB Registers", "Slice Registers"), "bram_tile": ("Block RAM Tile",),
              "uram": ("URAM",), "dsp": ("DSPs",)}


def parse_utilization(path: Path) -> UtilizationResult:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise L1mlError(f"cannot read the report: {exc}", path=path) from None
    version = re.search(r"Tool Version\s*:\s*Vivado v\.(\S+)", text)
    device = re.search(r"\|\s*Device\s*:\s*(\S+)", text)
    state = re.search(r"\|\s*Design State\s*:\s*(.+?)\s*$", text, re.M)
    if not (version and device and "report_utilization" in text or "Utilization Design Information" in text):
        raise L1mlError("not a Vivado utilisation report", path=path)
    table = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0] and cells[0] not in table:
            table[cells[0].rstrip("*").strip()] = cells
    header = next((cells for cells in table.values() if cells[0] == "Site Type"), None)
    avail_col = header.index("Available") if header and "Available" in header else 3
    resources = {}
    for key, names in _UTIL_ROWS.items():
        row = next((table[n] for n in names if n in table), None)
        if row is not None:
            resources[key] = Usage(float(row[1]), float(row[avail_col]) if row[avail_col] not in ("", "-") else None)
    ramb36 = next((float(table[n][1]) for n in table if n.startswith("RAMB36")), 0.0)
    ramb18 = next((float(table[n][1]) for n in table if n.startswith("RAMB18") and "only" not in n), 0.0)
    return UtilizationResult(str(path), version.group(1) if version else "", device.group(1) if device else "",
                             state.group(1) if state else "", resources, ramb36, ramb18)


@dataclass
class TimingSummary:
    source: str
    version: str
    wns_ns: float | None  # worst negative (setup) slack; None: no constrained path
    tns_ns: float | None
    failing_endpoints: int
    whs_ns: float | None  # worst hold slack
    clocks: dict[str, float] = field(default_factory=dict)  # clock name -> period (ns)

    @property
    def met(self) -> bool | None:
        """Setup timing met (None: nothing was constrained)."""
        return None if self.wns_ns is None else self.wns_ns >= 0

    def to_dict(self) -> dict:
        return {"kind": "timing", **asdict(self), "met": self.met}


_TIMING_HEADER = re.compile(r"WNS\(ns\)\s+TNS\(ns\)\s+TNS Failing Endpoints.*\n\s*-[- ]*\n(.*)")
_CLOCK_ROW = re.compile(r"^(\S+)\s+\{[\d. ]+\}\s+([\d.]+)\s+[\d.]+\s*$", re.M)


def parse_timing_summary(path: Path) -> TimingSummary:
    """The 'Design Timing Summary' and 'Clock Summary' of Vivado's report_timing_summary."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise L1mlError(f"cannot read the report: {exc}", path=path) from None
    row = _TIMING_HEADER.search(text)
    if "report_timing_summary" not in text[:4000] or row is None:
        raise L1mlError("not a Vivado timing summary report (no Design Timing Summary)", path=path)
    cells = row.group(1).split()  # WNS TNS failing total WHS THS ... ("inf"/"NA" where nothing is constrained)
    version = re.search(r"Tool Version\s*:\s*Vivado v\.(\S+)", text)
    clocks_at = text.find("| Clock Summary")
    clocks = {m.group(1): float(m.group(2)) for m in _CLOCK_ROW.finditer(text[clocks_at:clocks_at + 4000])} \
        if clocks_at >= 0 else {}
    return TimingSummary(str(path), version.group(1) if version else "", _slack(cells[0]), _slack(cells[1]),
                         int(cells[2]) if cells[2].isdigit() else 0, _slack(cells[4]), clocks)


def _slack(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return None if value in (float("inf"), float("-inf")) else value


def parse_report(path: Path):
    """A C-synthesis (.xml or .rpt) or Vivado utilisation report, recognised by its content."""
    path = Path(path)
    if not path.is_file():
        raise L1mlError("no such report", path=path)
    if path.suffix == ".xml":
        return parse_csynth_xml(path)
    head = path.read_text(errors="replace")[:4000]
    if "HLS Report for" in head:
        return parse_csynth_rpt(path)
    if "Vivado" in head and "report_utilization" in head or "Utilization Design Information" in head:
        return parse_utilization(path)
    raise L1mlError("not a C-synthesis or Vivado utilisation report", path=path)
