"""One Markdown section per scenario: a title that says what the figures measure, and
a table. :func:`sections` yields them in the order of the run; ``report.markdown``
numbers them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Section = tuple[str, str]  # (title paragraph, table)


def library(row: dict[str, Any]) -> str:
    return str(row.get("library", row.get("contender", "?")))


def _label(row: dict[str, Any]) -> str:
    role = row.get("role")
    if role == "floor" or row.get("floor") is True:
        return library(row) + " (floor)"
    if role == "info" or row.get("extra") is True:
        return library(row) + " (info)"
    if role == "bound":
        return library(row) + " (bound)"
    return library(row)


def x(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def duration(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1000:.2f} µs"


def _both(ratio: Any, ns: Any, digits: int = 2) -> str:
    return "-" if ratio is None else f"{x(ratio, digits)} ({duration(ns)})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


# -- in-process scenarios --------------------------------------------------------------


def _round(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    cells = []
    for r in rows:
        if "error" in r:
            cells.append([r["client"], _label(r), r["error"], "", ""])
            continue
        if r.get("retries"):
            rejected = _both(r.get("rejected_ratio"), r.get("rejected_ns"))
        else:
            rejected = "— (returns the 401)"
        cells.append(
            [
                r["client"],
                _label(r),
                _both(r.get("leg_ratio"), r.get("leg_ns")),
                _both(r.get("ok_ratio"), r.get("ok_ns")),
                rejected,
            ]
        )
    title = (
        "**Whole round per call, cached token** (no client, no socket; lower is better). "
        "*Whole round, 200*: the request leg plus the response side (requests: "
        "`auth(prepared)`, then the response hooks through `dispatch_hook` with a "
        "`Response` built once; httpx/httpx2: the auth flow driven to its first request, "
        "then the 200 sent in until the flow stops), as a ratio to the floor (one "
        "precomputed header, nothing on the response side). *Whole round, 401*: the API "
        "rejects the token and the auth handles it in full: a real token request to the "
        "benchmark's token server on 127.0.0.1, then one resend, answered 200 in-process; "
        "as a ratio to *floor + refresh* (hand-written: one plain token POST, one resend); "
        "the peers return the 401 unhandled. *(bound)*: what any requests auth that sees "
        "the response pays at least: the header, and a response hook that returns at "
        "once (requests shows an auth the response only through a hook on the request). "
        "*Request leg only* is a part of the round "
        "(for locating the cost), not the cost of a call. Median of "
        f"{cfg['round_repeats']} repeats of {cfg['round_batch']} rounds "
        f"({cfg['round401_repeats']} of {cfg['round401_batch']} with a 401)."
    )
    header = ["client", "library", "request leg only", "**whole round, 200**", "whole round, 401"]
    return title, table(header, cells)


def _client(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    cells = []
    for r in rows:
        if "error" in r:
            cells.append([r["client"], _label(r), r["error"], "", ""])
            continue
        share = r.get("auth_share")
        cells.append(
            [
                r["client"],
                _label(r),
                x(r.get("call_ratio"), 3),
                duration(r.get("call_ns")),
                "-" if share is None else f"{share * 100:.1f} %",
            ]
        )
    title = (
        "**One call through the real client on an in-process transport** (cached token, "
        "a 200): `requests.Session.get` with a transport adapter that answers in-process, "
        "`httpx`/`httpx2` `Client.get`/`AsyncClient.get` with an in-process transport; "
        "ratio to the same call with the floor auth, and the auth's cost above the floor "
        f"as a share of the call. Median of {cfg['client_repeats']} repeats of "
        f"{cfg['client_batch']} calls."
    )
    header = ["client", "library", "call x floor", "per call", "auth above the floor"]
    return title, table(header, cells)


def _origins(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    counts = list(cfg["origin_counts"])
    by: dict[tuple[str, str], dict[int, str]] = {}
    for r in rows:
        cell = r["error"] if "error" in r else _both(r.get("ok_ratio"), r.get("ok_ns"))
        by.setdefault((r["client"], _label(r)), {})[r["origins"]] = cell
    cells = [[c, lib] + [v.get(n, "") for n in counts] for (c, lib), v in by.items()]
    title = (
        "**One object, many origins** (whole round with a 200, cached token): the URLs "
        "cycle through N distinct origins `https://h{i}.example.com/v1/x` "
        '(delivery_auth: `allowed_hosts="*.example.com"`); ratio to the floor at the same '
        "N; *(bound)* as in the whole-round table."
    )
    header = ["client", "library"] + [f"{n} origin{'s' if n != 1 else ''}" for n in counts]
    return title, table(header, cells)


def _build(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    cells = []
    for r in rows:
        if "error" in r and "build_ns" not in r:
            cells.append([r["contender"], r["error"], "", ""])
            continue
        kept = r.get("retained_bytes")
        cells.append(
            [
                r["contender"],
                duration(r.get("build_ns")),
                x(r.get("build_vs_authlib")),
                "-" if kept is None else f"{kept / 1024:.2f} KiB",
            ]
        )
    title = (
        "**Building one object, and the memory it keeps before first use**: build time "
        f"per object (median of {cfg['build_repeats']} batches of {cfg['build_batch']}), "
        "as a ratio to Authlib's requests `OAuth2Session`; memory by `tracemalloc`, bytes "
        f"still allocated after building {cfg['memory_objects']} objects, per object."
    )
    header = ["object", "build time", "x Authlib OAuth2Session", "retained per object"]
    return title, table(header, cells)


def _threads(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    cells = []
    for r in rows:
        cells.append(
            [
                r["contender"],
                str(r.get("objects")),
                str(r.get("refreshed", "-")),
                str(r.get("token_requests", "-")),
                str(r.get("extra_threads_after_refreshes", "-")),
                str(r.get("extra_threads_peak", "-")),
                str(r.get("extra_threads_after_close", "-")),
            ]
            + ([r["error"]] if "error" in r else [])
        )
    title = (
        f"**Threads left after {cfg['thread_objects']} objects each refreshed once**: each "
        f"object gets a token; once the tokens are {cfg['thread_token_age']:g} s old "
        "(`max_token_age`), one call per object starts a background refresh; growth of "
        "`threading.active_count()` once every refresh has landed, its peak meanwhile, "
        "and after `close()`. (The peers refresh on the calling thread: no threads.)"
    )
    header = [
        "library",
        "objects",
        "refreshed",
        "token requests",
        "extra threads after the refreshes",
        "peak",
        "after close()",
    ]
    return title, table(header, cells)


def _fleet(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    title = (
        "**Fleet cold start** (processes on a cold shared cache, "
        f"{cfg['fleet_processes']} processes, token endpoint {cfg['fleet_token_delay']:g} s; "
        "see benchmarks/processes.py)"
    )
    missing = [r for r in rows if "not_available" in r]
    if missing and len(missing) == len(rows):
        return title, "Not run: " + "; ".join(str(r["not_available"]) for r in missing)
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys and k not in ("library",)]
    return title, table(keys, [[str(r.get(k, "")) for k in keys] for r in rows])


# -- scenarios over loopback -------------------------------------------------------------


def _stampede(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    cells = []
    for r in rows:
        if "not_available" in r:
            cells.append([r["client"], library(r), r["callers"], "not available", "-", ""])
            continue
        if "error" in r:
            cells.append([r["client"], library(r), r.get("callers", ""), "-", "-", r["error"]])
            continue
        notes = list(r.get("error_kinds", []))
        if "max_loop_stall_ms" in r:
            notes.append(f"longest event-loop stall {r['max_loop_stall_ms']:.0f} ms")
        notes += r.get("notes", [])
        cells.append(
            [
                r["client"],
                library(r),
                r["callers"],
                str(r["token_requests"]),
                str(r["errors"]),
                "; ".join(notes),
            ]
        )
    title = (
        "**Cold-start stampede** over loopback (token requests made; 1 is right; token "
        f"endpoint latency {cfg['stampede_token_delay'] * 1000:g} ms)"
    )
    header = ["client", "library", "callers", "token requests", "errors", "notes"]
    return title, table(header, cells)


def _rotation(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    cells = []
    for r in rows:
        label = _label(r)
        if "error" in r:
            cells.append([r["client"], label, r["error"], "", "", "", "", "", ""])
            continue
        cells.append(
            [
                r["client"],
                label,
                str(r["calls"]),
                str(r["token_requests"]),
                str(r["waited"]),
                str(r["saw_401"]),
                str(r["failed"]),
                "1.00x" if r.get("floor") else x(r.get("p50_ratio")),
                "1.00x" if r.get("floor") else x(r.get("p99_ratio")),
            ]
        )
    title = (
        f"**Token rotation under load** over loopback ({cfg['rotation_lifetime']} s tokens, "
        f"{cfg['rotation_threads']} threads, {cfg['rotation_seconds']:g} s; latency of the "
        "whole call as a ratio to the floor's)"
    )
    header = [
        "client",
        "library",
        "calls",
        "token requests",
        "calls that waited",
        "calls that saw a 401",
        "failed calls",
        "p50 x floor",
        "p99 x floor",
    ]
    return title, table(header, cells)


def _status(value: Any) -> str:
    if value == 200:
        return "200 (recovered)"
    return str(value)


def _recovery(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    cells = []
    for r in rows:
        if "error" in r:
            cells.append([r["client"], library(r), r["error"], "", ""])
            continue
        cells.append(
            [
                r["client"],
                library(r),
                _status(r.get("next_status")),
                _status(r.get("second_status")),
                str(r.get("token_requests")),
            ]
        )
    title = "**Recovery after server-side revocation** over loopback"
    header = ["client", "library", "next call", "the call after", "token requests"]
    return title, table(header, cells)


def _throughput(rows: list[dict[str, Any]], cfg: dict[str, Any]) -> Section:
    cells = []
    for r in rows:
        cell = r.get("error") or x(r.get("ratio"), 3)
        if r.get("ratio_iqr") and not r.get("floor"):
            cell += f" ({r['ratio_iqr'][0]:.2f}-{r['ratio_iqr'][1]:.2f})"
        cells.append([r["client"], _label(r), cell])
    title = (
        "**End-to-end throughput over loopback**, one caller, keep-alive, whole calls to "
        "the server process (higher is better; median of per-round ratios, interquartile "
        "range in brackets)"
    )
    return title, table(["client", "library", "calls/s x floor"], cells)


RENDERERS: dict[str, Callable[[list[dict[str, Any]], dict[str, Any]], Section]] = {
    "round": _round,
    "client": _client,
    "origins": _origins,
    "build": _build,
    "threads": _threads,
    "stampede": _stampede,
    "fleet": _fleet,
    "rotation": _rotation,
    "recovery": _recovery,
    "throughput": _throughput,
}


def sections(results: dict[str, Any]) -> Iterator[Section]:
    """The sections of the scenarios that ran, in the order they ran."""
    for name, rows in results["scenarios"].items():
        render = RENDERERS.get(name)
        if render is not None and rows:
            yield render(rows, results["settings"])
