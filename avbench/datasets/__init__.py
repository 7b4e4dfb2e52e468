"""Readers of the official release layouts, shared by the task plugins, `avbench data check` and the
data-version check.

One module per release format: `layout` (which folder holds a data set, where its media files are),
`ave` (Annotations.txt and its split files), `music_avqa` (which question json to read); `text`
names the file and line of an annotation file that is not UTF-8. Tasks call
these from `load()`; docs/data-layout.md lists every layout they accept.
"""
