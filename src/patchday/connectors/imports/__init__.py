"""File imports of inventory: SBOMs (CycloneDX, SPDX), hosts CSV, osquery results. Pure parsers (no Django),
so they test in milliseconds; the inventory services store what they return. See docs/imports.md."""
