"""quadviz: online SGD of quadratic networks beside the exact Riccati flow.

Run with ``streamlit run app.py``. This file is the frame: page setup, the
navigation between the pages in app_pages/, and the sidebar controls they
share. The pages do not live in a folder named pages/: Streamlit 1.67 then
starts in its older multipage mode, which runs a page file directly (without
this frame) when the first request of the server process opens its URL.
"""

import streamlit as st

from quadviz import reduced_kernel
from quadviz.app import controls, gallery, lecture, share

st.set_page_config(page_title="quadviz", layout="wide")
# Compile the reduced-SGD loop off the request path; until it is ready,
# reduced SGD takes the same steps in the torch loop.
reduced_kernel.start_warm_up()

page = st.navigation(
    [
        st.Page(
            "app_pages/overview.py", title="Overview", url_path="overview", default=True
        ),
        st.Page("app_pages/sgd_dynamics.py", title="SGD dynamics", url_path="sgd"),
        st.Page("app_pages/riccati_flow.py", title="Riccati flow", url_path="riccati"),
        st.Page(
            "app_pages/signal_recovery.py", title="Signal recovery", url_path="recovery"
        ),
        st.Page("app_pages/scaling_laws.py", title="Scaling laws", url_path="scaling"),
        st.Page("app_pages/replay.py", title="Training replay", url_path="replay"),
        st.Page("app_pages/theory.py", title="Theory notes", url_path="theory"),
    ]
)
lecture.setup()
# The scenario picker applies a link's scenario=NAME before the controls read
# the link's own values, so that those override the scenario's.
gallery.sidebar()
config = controls.sidebar()
share.sidebar(config)
controls.show_messages()
page.run()
