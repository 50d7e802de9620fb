#!/usr/bin/env bash
# Readers and one writer on a vindex at once; meant for SAN=thread as much as the plain build.
set -euo pipefail
timeout 600 "$BUILD/tests/vindex_concurrency"
