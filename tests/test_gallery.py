import pytest
from PIL import Image

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
