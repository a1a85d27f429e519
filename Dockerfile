# pyctl's distro scenario tests, as build steps: a successful build is a passed test.
# The build context holds debs/pyctl.deb (the package under test), debs/pyctl-next.deb (a newer
# build of it, for the upgrade step), certs/ (extra CA certificates, may be empty) and
# tests/distro/scenario.sh. tests/distro/run prepares that context and builds this file on
# Debian 11, 12 and 13 with podman; `docker build --build-arg BASE=debian:trixie CONTEXT` works
# the same way where Docker is at hand.
ARG BASE=debian:bookworm
# The image the tests start from: this file's stage deps, or (tests/distro/run) its tagged build.
ARG DEPS=deps
# The system under test, before pyctl comes: tests/distro/run builds this stage first and tags it
# (localhost/pyctl-deps:RELEASE), so its layers stay in podman's cache between runs.
FROM ${BASE} AS deps

ENV DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

# The host's extra CA certificates first, so apt and pip trust the same proxies the host does.
COPY certs/ /usr/local/share/ca-certificates/
RUN rm -f /usr/local/share/ca-certificates/.keep \
 && (command -v update-ca-certificates >/dev/null || \
     (apt-get update -qq && apt-get install -y -qq ca-certificates >/dev/null)) \
 && update-ca-certificates >/dev/null

# A system with the distro's pip, sudo, and two unprivileged accounts A and B.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-pip python3-venv sudo \
      procps man-db >/dev/null \
 && useradd -m -s /bin/bash pyctl-a \
 && useradd -m -s /bin/bash pyctl-b \
 && echo 'pyctl-a ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/pyctl-a \
 && chmod 0440 /etc/sudoers.d/pyctl-a

# Debian's Ansible, for the configuration-management phase (`scenario.sh ansible`). Debian 11 has
# no ansible-core (only the whole `ansible` 2.10 bundle): none there, and the phase says so.
RUN if apt-cache show ansible-core >/dev/null 2>&1; then \
      apt-get install -y -qq --no-install-recommends ansible-core >/dev/null; \
    else echo "SKIP: no ansible-core in Debian $(cat /etc/debian_version)"; fi

# The tests, one container throughout (tests/distro/run builds them with --layers=false: a
# folder made by one step stays renameable in the next, as on a real system).
FROM ${DEPS}
RUN apt-get update -qq
COPY debs/ /pyctl-test/debs/
COPY tests/distro/scenario.sh /pyctl-test/scenario.sh
COPY tests/data/pip_options.py /pyctl-test/pip_options.py

RUN bash /pyctl-test/scenario.sh wheels
RUN bash /pyctl-test/scenario.sh install
RUN bash /pyctl-test/scenario.sh user-tiers
RUN bash /pyctl-test/scenario.sh system-tier
RUN bash /pyctl-test/scenario.sh ansible
RUN bash /pyctl-test/scenario.sh project-venv
RUN bash /pyctl-test/scenario.sh hooks
RUN bash /pyctl-test/scenario.sh privilege
RUN bash /pyctl-test/scenario.sh measure
RUN bash /pyctl-test/scenario.sh upgrade
RUN bash /pyctl-test/scenario.sh remove
RUN bash /pyctl-test/scenario.sh purge
