# Homebrew formula for pyctl (Linux and macOS). Built from the release's source tarball, the
# one scripts/build-packages makes; the release workflow fills in url and sha256 for each tag.
# Homebrew installs as the user, never as root: only the user tier is used, and pip reaches it
# through the shims folder this formula installs (put "$(brew --prefix)/opt/pyctl/libexec/shims"
# first on PATH, or source the profile snippet).
class Pyctl < Formula
  desc "Two-tier Python packages: per-user pip venvs, every change recorded and undoable"
  homepage "https://example.invalid/pyctl"
  url "https://example.invalid/pyctl/releases/download/v0.1.0/pyctl-0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license "MIT"

  depends_on "rust" => :build
  depends_on "python@3.12"

  def install
    system "cargo", "install", *std_cargo_args
    system bin/"pyctl", "generate", "completions", buildpath/"generated/completions"
    man1.install Dir["man/*.1"]
    bash_completion.install buildpath/"generated/completions/pyctl.bash" => "pyctl"
    zsh_completion.install buildpath/"generated/completions/_pyctl"
    fish_completion.install buildpath/"generated/completions/pyctl.fish"
    (libexec/"shims").mkpath
    %w[pip pip3].each { |name| (libexec/"shims").install_symlink bin/"pyctl" => name }
    (etc/"pyctl").install "etc/pyctl/config.toml"
    (share/"pyctl").install "etc/profile.d/pyctl.sh"
  end

  def caveats
    <<~EOS
      To route `pip` to your own recorded venv, put the shims first on PATH:
        export PATH="#{opt_libexec}/shims:$HOME/.local/python-packages/venv/bin:$PATH"
      The root-only system tier (`sudo pyctl system init`) is for distro packages, not Homebrew.
    EOS
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/pyctl --version")
    ENV["PYCTL_HOME"] = testpath/"tier"
    ENV["PYCTL_PYTHON"] = Formula["python@3.12"].opt_bin/"python3.12"
    system bin/"pyctl", "init", "--no-modify-path"
    assert_predicate testpath/"tier/venv/pyvenv.cfg", :exist?
    assert_match "init", shell_output("#{bin}/pyctl history")
  end
end
