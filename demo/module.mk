# SPDX-License-Identifier: LGPL-2.1-or-later
# demo/: make demo (deps, build, images, then the main job on the demo VM).
demo:
	$(MAKE) deps
	$(MAKE) build
	$(MAKE) images
	demo/demo.sh
