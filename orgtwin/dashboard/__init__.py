"""The Streamlit dashboard behind ``app.py``: pages, cached library calls, charts.

- ``folders``: the scenarios and results folders, and the only files the pages may open;
- ``state``: every run of a scenario a page shows (Explore, Compare, Sweeps), as a cached
  call into the orgtwin library; the warm worker pool;
- ``telemetry_state``: every computation from a telemetry folder a page shows (Learn,
  Watch, Validate, and the trust badge), cached likewise;
- ``address``: the Explore page's exploration kept in the URL (bookmark, share);
- ``charts``: small pure functions from a DataFrame to an Altair chart;
- ``ui``: the error guard, bounded inputs, provenance captions and download buttons;
- ``pages/``: the page scripts (Explore, Compare, Sweeps, Learn, Validate, Watch) that
  ``app.py`` navigates.

Importing this package imports nothing else (no Streamlit): ``import orgtwin`` stays free
of the UI, as the import rules require.
"""
