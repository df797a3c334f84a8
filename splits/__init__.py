"""Hofer et al.'s 20 stratified splits of MNIST and SVHN at each training size, as data (`stratified_splits.json`,
read by `data.get_split`; where they come from: README.md here). A package only so that the file ships with an
install."""
