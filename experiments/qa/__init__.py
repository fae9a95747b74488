"""The question/answer study's tooling: sentence embedders (:mod:`.embedders`), the features
of a folder of splits (:mod:`.features`) and the cleaning of LLM replies (:mod:`.llm_reply`).

The loaders and the features file itself are in :mod:`minidl.datasets`, which needs NumPy only.
"""
