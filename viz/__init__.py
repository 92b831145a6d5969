"""The drawing floor: pure functions from a Capture (+ options) to plotly figures, tables or
escaped HTML strings. No streamlit here, no model calls, no I/O.
"""
