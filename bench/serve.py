"""The web page under load: single-user predict latency, bursts of concurrent requests, server RSS.

    python bench/serve.py --run RUN [--src DIR] [--baseline-src DIR] [--bursts 4] [--burst 200]
                          [--single 60] [--big-body-mb 100]

Starts `netscope serve RUN` in a subprocess (this checkout's src/, and with --baseline-src a second
server from another source tree, e.g. the code before a change) and prints JSON lines:

- single_predict: predict latency of one user (sequential requests, every layer's feature maps, as
  the page asks) and the server's CPU ms per predict (robust where other jobs share the machine),
  both servers taking turns in blocks so that machine load hits both alike; the ratios are this
  checkout's over the baseline's (< 1: faster).
- burst: `--burst` requests sent at once (predict / explain / twin over distinct test images),
  repeated `--bursts` times: how many answered 200, 429/503 (with Retry-After) or other 5xx, how
  many 200s differ from the same request served alone, p50/p95 latency, the CPU seconds the
  server spent on it (robust where other jobs share the machine), and the server's RSS after
  each burst (it should level off, not grow per burst).
- chunked_body_mb (with --big-body-mb N): one body of N MB sent in chunks without Content-Length:
  the answer, how much was sent before it came, and the server's RSS before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from netscope.data import load_dataset

SRC = Path(__file__).resolve().parents[1] / "src"
KINDS = [  # one burst cycles through these, each on its own test image
    ("/api/predict", {}),
    ("/api/explain", {"method": "saliency"}),
    ("/api/twin", {"method": "fgsm", "eps": 0.2}),
    ("/api/predict", {"layers": ["conv1", "relu2", "fc2"]}),
    ("/api/explain", {"method": "occlusion"}),
    ("/api/twin", {"method": "deepfool"}),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(run: str, src: Path):
    """Yields (base URL, pid) of `netscope serve run` started from source tree `src`."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "netscope", "serve", run, "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


def rss_mb(pid: int) -> float:
    """Returns the resident memory of process `pid` in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """Returns the CPU seconds (user + system, all threads) process `pid` has used (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def burst_requests(images, n: int) -> list[tuple[str, dict]]:
    """Returns n (path, body) pairs over distinct test images, cycling through KINDS."""
    return [
        (KINDS[k % len(KINDS)][0], {"image": images[k], **KINDS[k % len(KINDS)][1]})
        for k in range(n)
    ]


async def fire(url: str, requests: list[tuple[str, dict]]) -> list[tuple[int, float, dict, str]]:
    """Sends every request at once; returns (status, seconds, JSON body, Retry-After) each."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:

        async def one(path: str, body: dict):
            start = time.perf_counter()
            response = await client.post(path, json=body)
            seconds = time.perf_counter() - start
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            return response.status_code, seconds, answer, response.headers.get("retry-after")

        return await asyncio.gather(*(one(path, body) for path, body in requests))


def burst_summary(answers, alone: list[dict]) -> dict:
    """Returns status counts, answers that differ from `alone`, and latency of one burst."""
    ok = [seconds for status, seconds, _, _ in answers if status == 200]
    busy = [a for a in answers if a[0] in (429, 503)]
    wrong = sum(a[0] == 200 and a[2] != reference for a, reference in zip(answers, alone))
    return {
        "ok": len(ok),
        "busy": len(busy),
        "busy_with_retry_after": sum(a[3] is not None for a in busy),
        "other_5xx": sum(a[0] >= 500 and a[0] != 503 for a in answers),
        "other_4xx": sum(400 <= a[0] < 500 and a[0] != 429 for a in answers),
        "wrong_answers": wrong,
        "p50_ms": round(1000 * percentile(ok, 0.5), 1) if ok else None,
        "p95_ms": round(1000 * percentile(ok, 0.95), 1) if ok else None,
        "busy_p50_ms": round(1000 * percentile([a[1] for a in busy], 0.5), 1) if busy else None,
    }


def burst_reports(servers: dict[str, tuple[str, int]], requests, bursts: int) -> dict[str, dict]:
    """Returns each server's burst summaries and RSS (MiB: before, then after each burst); the
    servers take turns, burst by burst, so that machine load hits them alike."""
    reports = {}
    for name, (url, pid) in servers.items():
        with httpx.Client(base_url=url, timeout=300) as client:
            alone = [client.post(path, json=body).json() for path, body in requests]
        reports[name] = {"alone": alone, "bursts": [], "rss_mb": [round(rss_mb(pid), 1)]}
    for _ in range(bursts):
        for name, (url, pid) in servers.items():
            cpu_before = cpu_s(pid)
            answers = asyncio.run(fire(url, requests))
            summary = burst_summary(answers, reports[name]["alone"])
            summary["server_cpu_s"] = round(cpu_s(pid) - cpu_before, 2)
            reports[name]["bursts"].append(summary)
            reports[name]["rss_mb"].append(round(rss_mb(pid), 1))
    return {name: {k: v for k, v in r.items() if k != "alone"} for name, r in reports.items()}


def big_body(url: str, pid: int, megabytes: int) -> dict:
    """Returns the status a chunked body of `megabytes` (no Content-Length) gets, how much of it
    was sent before the server answered, and the server's RSS before and after."""
    port = int(url.rsplit(":", 1)[1])
    before = rss_mb(pid)
    chunk = b"0," * 32768
    sent, reply = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sock.sendall(
            f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        try:
            while sent < megabytes * 2**20:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed before the body ended
            pass
        while b"\r\n" not in reply:
            reply += sock.recv(4096) or b"\r\n"
    return {
        "status": reply.split(b"\r\n")[0].decode(errors="replace"),
        "sent_mb": round(sent / 2**20, 2),
        "rss_mb_before": round(before, 1),
        "rss_mb_after": round(rss_mb(pid), 1),
    }


def single_user(servers: dict[str, tuple[str, int]], image, n: int, block: int = 10) -> dict:
    """Returns each server's predict latency (median and p95 ms) and server CPU ms per predict,
    for sequential requests, the servers taking turns block by block."""
    times: dict[str, list[float]] = {name: [] for name in servers}
    cpu = dict.fromkeys(servers, 0.0)
    clients = {name: httpx.Client(base_url=url, timeout=60) for name, (url, _) in servers.items()}
    for client in clients.values():  # warm up: first checkpoint load, first PNG encoder call
        for _ in range(3):
            client.post("/api/predict", json={"image": image})
    for _ in range(0, n, block):
        for name, client in clients.items():
            cpu_before = cpu_s(servers[name][1])
            for _ in range(block):
                start = time.perf_counter()
                response = client.post("/api/predict", json={"image": image})
                times[name].append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
            cpu[name] += cpu_s(servers[name][1]) - cpu_before
    for client in clients.values():
        client.close()
    return {
        name: {
            "median_ms": round(1000 * statistics.median(t), 2),
            "p95_ms": round(1000 * percentile(t, 0.95), 2),
            "server_cpu_ms": round(1000 * cpu[name] / len(t), 2),
        }
        for name, t in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trained run directory")
    parser.add_argument("--src", default=str(SRC), help="the source tree to measure (its src/)")
    parser.add_argument("--baseline-src", help="a source tree to compare with (its src/ folder)")
    parser.add_argument("--bursts", type=int, default=4)
    parser.add_argument("--burst", type=int, default=200, help="requests per burst")
    parser.add_argument("--single", type=int, default=60, help="sequential predicts per server")
    parser.add_argument(
        "--big-body-mb", type=int, default=0, help="then send one chunked body this large"
    )
    args = parser.parse_args()

    test = load_dataset("mnist").test_images
    images = [(test[i, 0].float() / 255).tolist() for i in range(args.burst)]
    sources = {"this": Path(args.src)} | (
        {"baseline": Path(args.baseline_src)} if args.baseline_src else {}
    )
    with (
        server(args.run, sources["this"]) as this,
        contextmanager_or_none(args.run, sources.get("baseline")) as baseline,
    ):
        servers = {"this": this} | ({"baseline": baseline} if baseline else {})
        single = single_user(servers, images[0], args.single)
        if baseline:
            single["this_over_baseline"] = {
                key: round(single["this"][key] / single["baseline"][key], 3)
                for key in ("median_ms", "server_cpu_ms")
            }
        print(json.dumps({"single_predict": single, "n": args.single}), flush=True)
        requests = burst_requests(images, args.burst)
        reports = burst_reports(servers, requests, args.bursts) if args.bursts else {}
        for name, report in reports.items():
            print(json.dumps({"server": name, "burst": args.burst, **report}), flush=True)
        for name, (url, pid) in servers.items() if args.big_body_mb else []:
            report = big_body(url, pid, args.big_body_mb)
            print(json.dumps({"server": name, "chunked_body_mb": args.big_body_mb, **report}))


@contextmanager
def contextmanager_or_none(run: str, src: Path | None):
    """Yields server(run, src), or None when there is no `src`."""
    if src is None:
        yield None
        return
    with server(run, src) as started:
        yield started


if __name__ == "__main__":
    main()
