"""CSV export throughput of the reports' streaming COPY, against ``psql \\copy`` in the same run.

A throw-away database gets a 1,000,000-row table (about 90 MB of CSV). The same query is exported,
interleaved ``--repeat`` times, by

* ``psql -c "\\copy (...) to FILE with (format csv, header)"`` (the practical limit: C all the way),
* ours: ``include.reports.export.export_query`` in a READ ONLY transaction, as a report run does,
* naive: ``cursor.execute`` + ``fetchall`` + ``csv.writer`` (what a simple exporter does).

ratio = ours' throughput / psql's (target >= 0.8). Peak memory (max RSS of a fresh process) is
measured for 100,000 and 1,000,000 rows: ours must not grow with rows, the naive one does.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    PROJECT_ROOT,
    Target,
    admin_database_url,
    create_scratch_database,
    drop_database,
    finish,
    print_table,
)

TARGET = Target(">=", 0.8)
QUERY = "SELECT id, customer, amount, created_at, paid, note FROM bench_report_rows WHERE id <= {rows}"


def _fill(rows: int):
    def fill(url: str) -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                """
                CREATE TABLE bench_report_rows AS
                SELECT g AS id,
                       'customer_' || (g %% 5000) AS customer,
                       ((g %% 997) * 1.5)::numeric(12, 2) AS amount,
                       timestamptz '2026-01-01 00:00:00+00' + g * interval '7 seconds' AS created_at,
                       (g %% 3 = 0) AS paid,
                       md5(g::text) AS note
                FROM generate_series(1, %s) AS g
                """,
                [rows],
            )
            conn.execute("VACUUM ANALYZE bench_report_rows")

    return fill


# --------------------------------------------------------------------------- the three exporters


def export_psql(url: str, rows: int, out: Path) -> int:
    command = f"\\copy ({QUERY.format(rows=rows)}) to '{out}' with (format csv, header)"
    subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True)
    return rows


def export_ours(url: str, rows: int, out: Path) -> int:
    import psycopg

    from include.reports.export import export_query

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("BEGIN READ ONLY")
        conn.execute("SELECT set_config('statement_timeout', '600s', true)")
        result = export_query(conn, QUERY.format(rows=rows), None, out, format="csv")
        conn.execute("ROLLBACK")
    return result.rows


def export_ours_xlsx(url: str, rows: int, out: Path) -> int:
    import psycopg

    from include.reports.export import export_query

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("BEGIN READ ONLY")
        result = export_query(conn, QUERY.format(rows=rows), None, out.with_suffix(".xlsx"), format="xlsx")
        conn.execute("ROLLBACK")
    out.with_suffix(".xlsx").rename(out)
    return result.rows


def export_naive(url: str, rows: int, out: Path) -> int:
    import csv

    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(QUERY.format(rows=rows))
        records = cur.fetchall()
        with open(out, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([c.name for c in cur.description])
            writer.writerows(records)
    return len(records)


EXPORTERS = {"psql": export_psql, "ours": export_ours, "naive": export_naive}
#: Measured for memory only (XLSX is bound by xlsxwriter's speed, not by the database).
MEMORY_ONLY = {"ours_xlsx": export_ours_xlsx}


def child(args: argparse.Namespace) -> None:
    """Run one exporter in this (fresh) process and report its time and peak memory."""
    import csv  # noqa: F401 - imported before the clock starts, like a running worker has them

    import psycopg  # noqa: F401

    import include.reports.export  # noqa: F401

    started = time.perf_counter()
    rows = {**EXPORTERS, **MEMORY_ONLY}[args.child](args.url, args.rows, Path(args.out))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb}))


def run_child(method: str, url: str, rows: int, out: Path) -> dict:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.reports",
            "--child",
            method,
            "--url",
            url,
            "--rows",
            str(rows),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--xlsx-rows", default="20000,200000", help="row counts for the XLSX memory check")
    parser.add_argument("--child", choices=sorted({**EXPORTERS, **MEMORY_ONLY}), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    admin_url = admin_database_url()
    work = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    print(f"creating a {args.rows:,}-row table ...", flush=True)
    url = create_scratch_database(admin_url, "bench_reports", _fill(args.rows))
    try:
        # Throughput: the three exporters interleaved, each in the same kind of fresh process.
        times: dict[str, list[float]] = {name: [] for name in EXPORTERS}
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):
            for method in EXPORTERS:
                out = work / f"{method}.csv"
                if method == "psql":
                    started = time.perf_counter()
                    export_psql(url, args.rows, out)
                    times[method].append(time.perf_counter() - started)
                else:
                    times[method].append(run_child(method, url, args.rows, out)["seconds"])
                sizes[method] = out.stat().st_size
                out.unlink()
        if sizes["ours"] != sizes["psql"]:  # the naive writer formats values its own way
            raise SystemExit(f"ours and psql wrote different files: {sizes}")
        median = {method: statistics.median(samples) for method, samples in times.items()}
        megabytes = sizes["psql"] / 1e6
        rows = [
            [
                method,
                f"{median[method]:.3f} s",
                f"{args.rows / median[method] / 1e6:.2f} M rows/s",
                f"{megabytes / median[method]:.0f} MB/s",
                f"{median['psql'] / median[method]:.2f}x",
            ]
            for method in EXPORTERS
        ]
        print(f"\nCSV export of {args.rows:,} rows ({megabytes:.0f} MB), median of {args.repeat}:")
        print_table(["method", "time", "rows/s", "MB/s", "vs psql"], rows)

        # Peak memory: a fresh process per measurement.
        memory: dict[str, dict[int, float]] = {"ours": {}, "naive": {}}
        for method in memory:
            for count in sorted({100_000, args.rows}):
                out = work / f"mem-{method}.csv"
                memory[method][count] = run_child(method, url, count, out)["peak_mb"]
                out.unlink()
        print("\npeak memory (max RSS of the exporting process):")
        print_table(
            ["method", *(f"{n:,} rows" for n in sorted(memory["ours"]))],
            [[m, *(f"{v:.0f} MB" for _, v in sorted(memory[m].items()))] for m in memory],
        )
        xlsx_counts = sorted(int(n) for n in args.xlsx_rows.split(",") if n)
        xlsx_memory = {}
        for count in xlsx_counts:
            out = work / "mem-xlsx.xlsx"
            measured = run_child("ours_xlsx", url, count, out)
            xlsx_memory[count] = measured["peak_mb"]
            print(f"ours_xlsx  {count:,} rows: {measured['peak_mb']:.0f} MB peak, {measured['seconds']:.1f} s")
            out.unlink()
    finally:
        drop_database(admin_url, url)
        for leftover in work.iterdir():
            leftover.unlink()
        work.rmdir()

    ratio = median["psql"] / median["ours"]
    small, large = sorted(memory["ours"])[0], sorted(memory["ours"])[-1]
    finish(
        "reports_csv_export",
        ratio,
        TARGET,
        rows=args.rows,
        csv_mb=round(megabytes, 1),
        seconds={m: round(v, 3) for m, v in median.items()},
        naive_vs_psql=round(median["psql"] / median["naive"], 3),
        peak_mb_ours={str(n): round(v, 1) for n, v in memory["ours"].items()},
        peak_mb_naive={str(n): round(v, 1) for n, v in memory["naive"].items()},
        ours_memory_growth_mb=round(memory["ours"][large] - memory["ours"][small], 1),
        peak_mb_ours_xlsx={str(n): round(v, 1) for n, v in xlsx_memory.items()},
    )


if __name__ == "__main__":
    main()
