"""One lock around every PDFium call in the process.

PDFium is not thread-safe, not even across different documents: pypdfium2's documentation
says no two pdfium calls may run at once in a process. Spyglass calls it from an
ingest's loader threads, the OCR stage's readers and the API's request threads, so every
call (open, render, text, close) holds ``PDFIUM``; work on the pixels it returns does not.
"""

import threading

PDFIUM = threading.RLock()
