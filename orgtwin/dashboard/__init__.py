"""The Streamlit dashboard behind ``app.py``: pages, cached library calls, charts.

- ``folders``: the scenarios and results folders, and the only files the pages may open;
- ``state``: every computation a page shows, as a cached call into the orgtwin library;
- ``charts``: small pure functions from a DataFrame to an Altair chart;
- ``ui``: the error guard, bounded inputs, provenance captions and download buttons;
- ``pages/``: the page scripts (Explore, Compare, Sweeps, Learn, Validate, Watch) that
  ``app.py`` navigates.

Importing this package imports nothing else (no Streamlit): ``import orgtwin`` stays free
of the UI, as the import rules require.
"""
