import matplotlib.pyplot as plt
import pytest
from PIL import Image

import climlatent as cl
from climlatent import gallery
from climlatent.gallery import make_gallery


@pytest.mark.slow
def test_gallery_regenerates_readme_figures(tmp_path):
    paths = make_gallery(tmp_path, epochs=20)
    for path in paths:
        with Image.open(path) as image:
            width, height = image.size
            colours = len(set(image.convert("RGB").getdata()))
        assert width > 400 and height > 200
        assert colours > 50  # a real map, not a blank canvas


def test_gallery_closes_the_figures_it_saved(monkeypatch, tmp_path):
    """Both figures stayed open after saving: 2 more pyplot figures per call, shown
    again by Jupyter under the cell."""
    ds = cl.datasets.synthetic_circulation(n_members=1, n_years=1, n_lat=8, n_lon=12)
    rmse = ds["tas"].isel(member=0).std("time")
    monkeypatch.setattr(gallery, "experiment", lambda epochs: ({}, {"a": rmse, "b": rmse}))
    open_before = plt.get_fignums()
    assert all(path.is_file() for path in make_gallery(tmp_path, epochs=1))
    assert plt.get_fignums() == open_before
