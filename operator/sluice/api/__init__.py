"""Pydantic models of every external shape the operator reads or writes.

The CRD's OpenAPI schema is the first line of validation; these models are how the Python code
sees the same objects, with the operator's defaults applied in one place (`effective_spec`).
"""
