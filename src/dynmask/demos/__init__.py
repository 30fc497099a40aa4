"""The runs behind `dynmask demo` (methods compared on the default data) and `dynmask guarantee`."""
