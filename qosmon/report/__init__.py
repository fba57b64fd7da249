"""The show report.

- :mod:`qosmon.report.sections`: ``build_sections(data, now)`` -> typed views
  of each section (headline, timeline, regions, incidents, stock, probes,
  found-vs-injected);
- :mod:`qosmon.report.render`: those views as HTML, the whole report or a
  chosen subset inside another page;
- :mod:`qosmon.report.output`: the report files and the folder's index;
- :mod:`qosmon.report.vocabulary`: what the page calls causes, metrics, levels.

A report is written in English or Simplified Chinese (``lang=`` where the
views are built); its words are translated by :mod:`qosmon.i18n`.
"""
