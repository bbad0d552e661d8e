"""What the installed Milvus Lite supports of what a whole Milvus index could use (README, issue 22).

Tries, on a throw-away .db: an Array-of-Structs field of FLOAT_VECTOR with an EMB_LIST_HNSW /
MAX_SIM index (under each spelling of the sub-field), binary, int8 and float16 vector fields, a
VARCHAR longer than a server's 65,535 bytes, and a BM25 full-text function, and prints what each
gave. Run: .venv/bin/python scripts/milvus_lite_probe.py
"""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np


def main() -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    client = MilvusClient(uri=os.path.join(tempfile.mkdtemp(), "probe.db"))
    print("server:", client.get_server_version())

    def attempt(what: str, action) -> None:
        try:
            print(f"{what}: {action() or 'ok'}")
        except Exception as exc:  # noqa: BLE001 - the point is to print what the engine says
            print(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")

    schema = client.create_schema(auto_id=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
    struct = client.create_struct_field_schema()
    struct.add_field("tok", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("tokens", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=struct, max_capacity=64)
    for i, name in enumerate(("tokens[tok]", "tokens.tok", "tok")):
        index = client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")
        index.add_index(name, index_type="EMB_LIST_HNSW", metric_type="MAX_SIM", params={"M": 16})
        attempt(f"Array-of-Structs, MAX_SIM index on {name!r}",
                lambda: client.create_collection(f"structs{i}", schema=schema, index_params=index))
    plain = client.prepare_index_params()
    plain.add_index("vector", index_type="FLAT", metric_type="IP")
    attempt("Array-of-Structs without its index", lambda: client.create_collection("structs", schema=schema,
                                                                                   index_params=plain))
    attempt("  fields the collection kept", lambda: [f["name"] for f in client.describe_collection("structs")["fields"]])
    for kind in ("BINARY_VECTOR", "INT8_VECTOR", "FLOAT16_VECTOR"):
        other = client.create_schema(auto_id=False)
        other.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
        other.add_field("v", getattr(DataType, kind), dim=64)
        attempt(kind, lambda: client.create_collection(kind.lower(), schema=other))
    big = client.create_schema(auto_id=False)
    big.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    big.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    big.add_field("blob", DataType.VARCHAR, max_length=300_000)
    attempt("VARCHAR of 280,000 characters", lambda: (client.create_collection("big", schema=big), client.insert(
        "big", [{"pk": "a", "v": [1.0, 0.0], "blob": "x" * 280_000}]), len(client.query(
            "big", filter='pk == "a"', output_fields=["blob"])[0]["blob"]))[-1])
    text = client.create_schema(auto_id=False)
    text.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    text.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True)
    text.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    text.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                               output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    attempt("BM25 function, search 'rencontre'", lambda: (
        client.create_collection("fts", schema=text, index_params=index),
        client.insert("fts", [{"pk": "a", "text": "Kim a rencontré Poutine à Vladivostok"},
                              {"pk": "b", "text": "la rencontre des deux hommes"}]),
        [[h["pk"] for h in hits] for hits in client.search("fts", data=["rencontre"], anns_field="sparse", limit=2,
                                                             search_params={"metric_type": "BM25"},
                                                             output_fields=["pk"])])[-1])
    client.close()


if __name__ == "__main__":
    main()
