"""Vector stores: where an index's passage vectors live and are searched (FAISS files or Milvus).

:mod:`qa.stores.base` is the interface (:class:`VectorStore`, :class:`Restriction`),
:mod:`qa.stores.location` parses `--store URI`, :mod:`qa.stores.faiss_store` and
:mod:`qa.stores.milvus_store` are the two implementations. pymilvus is imported only inside
the Milvus store, so the FAISS path never loads it.
"""
