"""Fixtures and helpers the tests share: servers, toy backends and stages, real model layouts."""
