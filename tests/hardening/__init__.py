"""Hardening suite: a fault, abuse and leak matrix (issue 7).

A package so that its conftest and helpers never shadow ``tests/conftest.py``.
"""
