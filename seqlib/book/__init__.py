"""What only the book needs: the run grid (papermill), the chapters' shared cells, the analysis the
pages share (``report``), charts for the offline site and the generated table of contents."""
