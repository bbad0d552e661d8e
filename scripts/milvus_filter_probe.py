"""How fast Milvus Lite answers a filtered search, by the way the filter is written (issue 22 item 4).

N synthetic rows (dim 384, `--docs` documents, one date each) in one Milvus Lite collection with
the fields qa writes for filters: `doc_ids`/`dates` ARRAY fields, and scalar `doc_id`/`date` (the
primary source) with an INVERTED index. The same 10%-of-documents filter is then asked as
`array_contains_any` over the arrays (what qa sent), as `doc_id in [...]` over the indexed scalar,
as `pk in [...]` (the rows a reader already knows match, from the records it holds), and as qa
asks it, the indexed scalar or the few rows another source lets in; p50 and
p90 over `--queries` searches of k=100, and the rows each returns that are not in the filter.

Run: .venv/bin/python scripts/milvus_filter_probe.py [--n 100000]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from pymilvus import DataType, MilvusClient

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    tmp = Path(tempfile.mkdtemp(prefix="qa-filter-probe-"))
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = rng.integers(0, args.docs, args.n)
    try:
        client = MilvusClient(uri=str(tmp / "f.db"))
        schema = client.create_schema(auto_id=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=384)
        schema.add_field("doc_ids", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=64, max_length=64)
        schema.add_field("dates", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=64, max_length=16)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
        schema.add_field("date", DataType.VARCHAR, max_length=16)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")
        index.add_index("doc_id", index_type="INVERTED")
        index.add_index("date", index_type="INVERTED")
        client.create_collection("c", schema=schema, index_params=index)
        started = time.perf_counter()
        for start in range(0, args.n, 1000):
            rows = [{"pk": f"p{i:07d}", "vector": vectors[i], "doc_ids": [f"d{docs[i]:05d}"],
                     "dates": [f"2019-{1 + docs[i] % 12:02d}"], "doc_id": f"d{docs[i]:05d}",
                     "date": f"2019-{1 + docs[i] % 12:02d}"} for i in range(start, min(args.n, start + 1000))]
            client.insert("c", rows)
        client.flush("c")
        client.load_collection("c")
        write_s = time.perf_counter() - started
        chosen = {f"d{d:05d}" for d in rng.choice(args.docs, args.docs // 10, replace=False)}
        keys = [f"p{i:07d}" for i in range(args.n) if f"d{docs[i]:05d}" in chosen]
        values = json.dumps(sorted(chosen))
        filters = {"array_contains_any(doc_ids, ...)": f"array_contains_any(doc_ids, {values})",
                   "doc_id in [...] (INVERTED)": f"doc_id in {values}",
                   "pk in [...] (the matching rows)": f"pk in {json.dumps(keys)}",
                   "(doc_id in [...]) or pk in [10 others] (qa's)": f"(doc_id in {values}) or pk in {json.dumps(keys[:10])}",
                   "none": ""}
        results = {"n": args.n, "matching_rows": len(keys), "write_and_flush_s": round(write_s, 1)}
        queries = vectors[rng.choice(args.n, args.queries, replace=False)]
        for name, expression in filters.items():
            times, wrong = [], 0
            for q in queries:
                start = time.perf_counter()
                hits = client.search("c", data=[q], limit=100, filter=expression, output_fields=["doc_id"],
                                     search_params={"metric_type": "IP"})[0]
                times.append(time.perf_counter() - start)
                wrong += sum(1 for h in hits if expression and h["entity"]["doc_id"] not in chosen)
            results[name] = {"p50_ms": round(1000 * float(np.percentile(times, 50)), 1),
                             "p90_ms": round(1000 * float(np.percentile(times, 90)), 1), "rows_outside": wrong}
        client.close()
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
