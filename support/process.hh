#pragma once
// Running a real program (vcplaned, vcplane-wire) from a test: spawn, wait with a deadline,
// read what it printed. Shared by the daemon and end-to-end tests.

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vcplane::test {

class process {
public:
    // Starts argv[0] with argv; stdout and stderr both go to a file the test can read.
    explicit process(const std::vector<std::string>& argv);
    ~process(); // kills the process if it still runs
    process(const process&) = delete;
    process& operator=(const process&) = delete;

    pid_t pid() const { return pid_; }
    std::string output() const;
    bool running();
    // Waits for the exit; returns the exit status, or -1 on timeout (the process still runs).
    int wait(std::chrono::milliseconds timeout);
    void signal(int sig);
    // Polls output() until it contains text or the process exits or the time is up.
    bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout);

private:
    pid_t pid_ = -1;
    int status_ = -1;
    bool exited_ = false;
    std::string log_path_;
};

// Runs to completion (or kills after the timeout) and returns {status, output}.
std::pair<int, std::string> run(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout = std::chrono::seconds(60));

std::string write_temp_file(const std::string& name, const std::string& text);

// Polls until path exists (a tool's --ready-file) or the time is up.
bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout);

// GET http://127.0.0.1:PORT/PATH; returns the body, or "" when nothing answers.
std::string http_get(uint16_t port, const std::string& path);
// The value of the first sample whose line starts with `series` (name plus labels); -1 if none.
double metric_value(const std::string& exposition, const std::string& series);
uint16_t free_tcp_port();

} // namespace vcplane::test
