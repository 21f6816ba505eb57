"""Analysis tools: plots of training curves and confusion matrices (matplotlib, optional)."""
