# pyctl across a Debian release upgrade that moves python3 from 3.11 to 3.13 (issue 16), as build
# steps: a successful build is a passed test. tests/distro/python-upgrade prepares the context
# (debs/pyctl.deb, certs/, tests/distro/{wheelhouse.sh,python-upgrade.sh}) and builds the stage
# `prepared` first with podman's layer cache (tagged localhost/pyctl-pyup:prepared), then the
# test stage on it without a cache, in one container.
ARG BOOKWORM=localhost/pyctl-base:bookworm
ARG TRIXIE=localhost/pyctl-base:trixie
ARG PREPARED=prepared

# The compiled wheel for Python 3.13, built in Debian 13 with its gcc and python3-dev.
FROM ${TRIXIE} AS cp313
ENV DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
COPY certs/ /usr/local/share/ca-certificates/
RUN rm -f /usr/local/share/ca-certificates/.keep && update-ca-certificates >/dev/null \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends gcc libc6-dev python3-dev >/dev/null
COPY tests/distro/wheelhouse.sh /wheelhouse.sh
RUN bash /wheelhouse.sh /wheelhouse

# The compiled wheel for Python 3.11 and the pure one, built in Debian 12.
FROM ${BOOKWORM} AS cp311
ENV DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
COPY certs/ /usr/local/share/ca-certificates/
RUN rm -f /usr/local/share/ca-certificates/.keep && update-ca-certificates >/dev/null \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends gcc libc6-dev python3-dev >/dev/null
COPY tests/distro/wheelhouse.sh /wheelhouse.sh
RUN bash /wheelhouse.sh --pure /wheelhouse

# Debian 12 as a user has it, before pyctl comes: python3, venv and pip, two accounts, the
# wheelhouse; and Debian 13's packages already in apt's cache, so that the test's full-upgrade
# downloads (almost) nothing. No compiler here: the upgrade moves only what a user has.
FROM ${BOOKWORM} AS prepared
ENV DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
COPY certs/ /usr/local/share/ca-certificates/
RUN rm -f /usr/local/share/ca-certificates/.keep && update-ca-certificates >/dev/null \
 && echo force-unsafe-io >/etc/dpkg/dpkg.cfg.d/90pyctl-test-unsafe-io \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-pip python3-venv >/dev/null \
 && useradd -m -s /bin/bash pyctl-a \
 && useradd -m -s /bin/bash pyctl-b
COPY --from=cp311 /wheelhouse/ /wheelhouse/
COPY --from=cp313 /wheelhouse/ /wheelhouse/
RUN sed -i s/bookworm/trixie/ /etc/apt/sources.list \
 && apt-get update -qq \
 && apt-get full-upgrade -y -qq --download-only >/dev/null \
 && sed -i s/trixie/bookworm/ /etc/apt/sources.list \
 && apt-get update -qq \
 && echo "trixie's packages in apt's cache: $(ls /var/cache/apt/archives/*.deb | wc -l)"

FROM ${PREPARED}
COPY debs/pyctl.deb /pyctl-test/debs/pyctl.deb
COPY tests/distro/python-upgrade.sh /pyctl-test/python-upgrade.sh
RUN bash /pyctl-test/python-upgrade.sh before
RUN bash /pyctl-test/python-upgrade.sh upgrade
RUN bash /pyctl-test/python-upgrade.sh system
RUN bash /pyctl-test/python-upgrade.sh users
