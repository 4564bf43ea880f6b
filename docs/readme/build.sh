#!/usr/bin/env bash
# Assembles README.md from the sections in docs/readme/ (edit the sections, then run this).
set -euo pipefail
cd "$(dirname "$0")"
{
  for f in 00-top toc local-run stack funnel actions-gather actions-protect audit reviewing runbook config performance design layout; do
    cat "$f.md"
    echo
  done
} > ../../README.md
