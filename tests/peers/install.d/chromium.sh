# Headless Chromium: the report test opens the drill's report.html in a real browser,
# screenshots it and reads its DOM. A font package comes along because a minimal
# machine may have none, and a page rendered without fonts shows empty boxes.
apt_install chromium fonts-dejavu-core
